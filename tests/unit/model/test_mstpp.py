"""MST++ baseline: shapes at any size, finite outputs, the published parameter count, gradient flow."""

from __future__ import annotations

import pytest
import torch

from model.config import MSTPPConfig
from model.mstpp import MSTPlusPlus

PUBLISHED_PARAMS = 1_620_000  # "1.62 M" in the MST++ paper


@pytest.fixture(scope="module")
def model() -> MSTPlusPlus:
    torch.manual_seed(0)
    return MSTPlusPlus(MSTPPConfig()).eval()


@pytest.mark.parametrize(("batch", "height", "width"), [(1, 37, 50), (2, 64, 64), (1, 3, 5)])
def test_output_shape_and_finite_at_any_size(model: MSTPlusPlus, batch: int, height: int, width: int) -> None:
    x_bchw = torch.rand(batch, 3, height, width)
    with torch.inference_mode():
        out_bchw = model(x_bchw)
    assert out_bchw.shape == (batch, 31, height, width)
    assert torch.isfinite(out_bchw).all()


def test_parameter_count_matches_paper(model: MSTPlusPlus) -> None:
    n_params = sum(p.numel() for p in model.parameters())
    print(f"MST++ parameters: {n_params:,}")
    assert abs(n_params - PUBLISHED_PARAMS) / PUBLISHED_PARAMS < 0.01


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    net = MSTPlusPlus(MSTPPConfig()).train()
    net(torch.rand(1, 3, 16, 16)).square().mean().backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reached: {missing}"
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_rejects_residual_width_mismatch() -> None:
    with pytest.raises(ValueError, match="n_feat"):
        MSTPlusPlus(MSTPPConfig(n_feat=62))
