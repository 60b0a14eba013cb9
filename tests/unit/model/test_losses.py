"""The reconstruction losses: the relative loss weighs an error by the value it is made on."""

from __future__ import annotations

import pytest
import torch

from model.config import VQVAEConfig
from model.losses import LOSSES, charbonnier, relative_l1
from model.vqvae import VQVAE


def test_relative_l1_matches_hand_computed_values() -> None:
    target = torch.tensor([0.0, 0.09, 0.99])
    pred = torch.tensor([0.01, 0.10, 1.00])
    # |0.01| / 0.01 = 1, 0.01 / 0.1 = 0.1, 0.01 / 1.0 = 0.01 -> mean 1.11 / 3.
    assert float(relative_l1(pred, target)) == pytest.approx(1.11 / 3)


def test_relative_l1_weighs_dark_errors_more_than_charbonnier_does() -> None:
    target = torch.tensor([0.02, 0.8])
    dark, bright = torch.tensor([0.03, 0.8]), torch.tensor([0.02, 0.81])
    assert float(relative_l1(dark, target)) > 10 * float(relative_l1(bright, target))
    charb = LOSSES["charbonnier"]
    assert float(charb(dark, target)) == pytest.approx(float(charb(bright, target)))


def test_relative_l1_has_finite_gradients_on_black_targets() -> None:
    pred = torch.zeros(4, requires_grad=True)
    relative_l1(pred, torch.zeros(4)).backward()
    assert pred.grad is not None and bool(torch.isfinite(pred.grad).all())


@pytest.mark.parametrize("name", ["charbonnier", "relative"])
def test_stage1_reconstruction_loss_is_the_configured_one(name: str) -> None:
    torch.manual_seed(0)
    vq = VQVAE(VQVAEConfig(codebook_size=16, latent_dim=8, recon_loss=name))
    x = torch.rand(2, 31, 8, 8)
    out = vq(x, 0, mask=False)
    expected = relative_l1(out.recon, x) if name == "relative" else charbonnier(out.recon, x)
    assert out.recon_loss.item() == pytest.approx(expected.item())


def test_stage1_rejects_an_unknown_loss() -> None:
    with pytest.raises(ValueError, match="recon_loss"):
        VQVAEConfig(recon_loss="l2")
