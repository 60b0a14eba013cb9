"""Stage 1: shapes per dataset and scale count, band masking, MoC assembly, overfitting a real cube."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.config import CAVE_WAVELENGTHS, DatasetSpec, VQVAEConfig
from model.data import read_cave
from model.vqvae import VQVAE

TWO_SOURCES = (
    DatasetSpec("cave", CAVE_WAVELENGTHS),
    DatasetSpec("remote", tuple(400.0 + 5 * i for i in range(60))),
)


@pytest.mark.parametrize("scales", [1, 2, 3])
def test_shapes_and_losses_per_dataset(scales: int) -> None:
    torch.manual_seed(0)
    vq = VQVAE(VQVAEConfig(datasets=TWO_SOURCES, scales=scales, latent_dim=16, codebook_size=32))
    for ds, bands in ((0, 31), (1, 60)):
        out = vq(torch.rand(2, bands, 16, 16), ds)
        assert out.recon.shape == (2, bands, 16, 16)
        assert len(out.idx) == scales
        assert torch.isfinite(out.loss) and out.codebook_loss > 0
    assert vq.reconstruct(torch.rand(1, 31, 13, 7), 0).shape == (1, 31, 13, 7)


def test_band_masking_zeroes_half_the_bands() -> None:
    vq = VQVAE(VQVAEConfig(mask_ratio=0.5))
    masked = vq.mask_bands(torch.ones(4, 31, 2, 2))
    zeroed = (masked[:, :, 0, 0] == 0).sum(1)
    assert zeroed.tolist() == [16, 16, 16, 16]


def test_moc_concatenates_every_dataset_per_scale() -> None:
    vq = VQVAE(VQVAEConfig(datasets=TWO_SOURCES, codebook_size=8, latent_dim=4))
    moc = vq.moc()
    assert [m.shape for m in moc] == [(16, 4), (16, 4)]
    assert torch.allclose(moc[0][8:], torch.nn.functional.normalize(vq.codebooks[1, 0].detach(), dim=-1))
    assert torch.allclose(moc[0].norm(dim=1), torch.ones(16))


def test_gradients_reach_codebooks_and_trunk() -> None:
    vq = VQVAE(VQVAEConfig(datasets=TWO_SOURCES, codebook_size=16, latent_dim=8))
    vq(torch.rand(2, 31, 8, 8), 0).loss.backward()
    assert vq.codebooks.grad is not None and vq.codebooks.grad[0].abs().sum() > 0
    assert vq.codebooks.grad[1].abs().sum() == 0  # the other dataset's codebook is not touched
    for name, p in vq.named_parameters():
        if name.startswith(("in_convs.1", "out_convs.1", "codebooks")):
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("gain", [False, True])
def test_reconstruction_loss_reaches_the_encoder(gain: bool) -> None:
    """The decoder reads the codewords straight-through: the reconstruction loss alone must train the
    encoder (with only the commitment loss pulling it, the features collapse onto one code)."""
    vq = VQVAE(VQVAEConfig(codebook_size=16, latent_dim=8, shape_gain=gain))
    vq(torch.rand(2, 31, 8, 8), 0, mask=False).recon_loss.backward()
    for name in ("in_convs.0.weight", "body.0.conv1.weight"):
        grad = dict(vq.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_shape_gain_keeps_each_features_norm() -> None:
    torch.manual_seed(0)
    vq = VQVAE(VQVAEConfig(codebook_size=16, latent_dim=8, shape_gain=True, scales=1)).eval()
    x = torch.rand(1, 31, 8, 8)
    qz = vq.quantize(x, 0)
    raw = vq.body(vq.in_convs[0](x))
    assert torch.allclose(qz.z[0].norm(dim=1), raw.norm(dim=1), atol=1e-5)
    assert torch.allclose(qz.z[0] / raw.norm(dim=1, keepdim=True), qz.q[0], atol=1e-5)


def test_overfits_one_real_cave_cube(shared_data: Path) -> None:
    """Reconstruction loss on one 32x32 crop of a real scene falls at least 10x (masking off)."""
    cube = read_cave(shared_data / "cave" / "fake_and_real_lemons_ms")
    x = torch.from_numpy(cube.data[:, 96:128, 96:128]).unsqueeze(0)
    torch.manual_seed(0)
    vq = VQVAE(VQVAEConfig(latent_dim=16, codebook_size=64))
    opt = torch.optim.AdamW(vq.parameters(), lr=3e-3)
    first = last = 0.0
    for step in range(300):
        out = vq(x, 0, mask=False)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        if step == 0:
            first = out.recon_loss.item()
        last = out.recon_loss.item()
    print(f"stage-1 overfit: Charbonnier {first:.4f} -> {last:.4f} ({first / last:.1f}x)")
    assert last < first / 10
