"""GANet: shapes for every scale count and odd sizes, parameter budget, gradient flow, freezing."""

from __future__ import annotations

import pytest
import torch

from model.config import GANetConfig
from model.ganet import GANet


def small_cfg(scales: int, **kw: object) -> GANetConfig:
    return GANetConfig(
        scales=scales,
        latent_dim=16,
        moc_sizes=(48,) * scales,
        encoder_blocks=(1,) * scales,
        decoder_blocks=(1,) * scales,
        top_t=8,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("scales", [1, 2, 3])
@pytest.mark.parametrize(("h", "w"), [(16, 16), (37, 50), (5, 3)])
def test_shapes_any_size_and_scale(scales: int, h: int, w: int) -> None:
    torch.manual_seed(0)
    net = GANet(small_cfg(scales)).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, h, w), with_entropy=True)
    assert out.hsi.shape == (2, 31, h, w)
    assert torch.isfinite(out.hsi).all()
    assert out.entropy is not None and out.entropy.shape == (2,) and torch.isfinite(out.entropy).all()


def test_batch_sizes_agree() -> None:
    torch.manual_seed(0)
    net = GANet(small_cfg(2)).eval()
    x = torch.rand(3, 3, 24, 20)
    with torch.no_grad():
        batched = net(x).hsi
        single = torch.cat([net(x[i : i + 1]).hsi for i in range(3)])
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)


def test_default_parameter_count_in_budget() -> None:
    net = GANet(GANetConfig())
    total = sum(p.numel() for p in net.parameters())
    print(f"GANet-S2 parameters (frozen included): {total:,} (paper: 0.76 M)")
    assert 300_000 <= total <= 1_500_000


def test_gradients_reach_trainable_and_not_frozen() -> None:
    torch.manual_seed(0)
    net = GANet(small_cfg(2)).train()
    net.set_replacement(0.5)
    net(torch.rand(2, 3, 16, 16)).hsi.square().mean().backward()
    frozen = {id(p) for m in net.frozen_modules() for p in m.parameters()}
    for name, p in net.named_parameters():
        if id(p) in frozen:
            assert not p.requires_grad and p.grad is None, name
        else:
            assert p.requires_grad, name
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, f"zero gradient for {name}"


def test_full_attention_refuses_large_inputs() -> None:
    net = GANet(small_cfg(1, attention="full", full_attention_max_pixels=64)).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 8, 8)).hsi.shape == (1, 31, 8, 8)
        with pytest.raises(ValueError, match="small inputs only"):
            net(torch.rand(1, 3, 16, 16))


@pytest.mark.parametrize("max_pixels", [16384, 64])
def test_adapting_forward_equals_plain_forward(max_pixels: int) -> None:
    """Asking for the entropy (of every pixel, or of a subsample) leaves the cube as it was."""
    torch.manual_seed(0)
    net = GANet(small_cfg(2, entropy_max_pixels=max_pixels)).eval()
    x = torch.rand(2, 3, 32, 24)
    with torch.no_grad():
        plain = net(x)
        adapting = net(x, with_entropy=True)
    torch.testing.assert_close(adapting.hsi, plain.hsi)
    assert plain.entropy is None and adapting.entropy is not None and adapting.entropy.shape == (2,)
