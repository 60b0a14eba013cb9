"""The mixed-patch and brightness protocols: one permutation for both images, exact factors."""

from __future__ import annotations

import pytest
import torch

from model.protocols import brightness_gamma, brightness_shift, mix_patches


def _patch_labels(x_chw: torch.Tensor, patch: int) -> torch.Tensor:
    """The value at each patch's top-left corner of channel 0, patches in row-major order."""
    return x_chw[0, ::patch, ::patch].reshape(-1)


def _labelled_pair(nh: int, nw: int, patch: int, extra: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB (3, .) and HSI (31, .) whose every pixel holds the index of its patch (plus a band offset)."""
    labels = torch.arange(nh * nw, dtype=torch.float32).reshape(nh, nw)
    plane = labels.repeat_interleave(patch, 0).repeat_interleave(patch, 1)
    plane = torch.nn.functional.pad(plane, (0, extra, 0, extra), value=-1.0)
    rgb = plane.expand(3, -1, -1) + torch.arange(3.0).reshape(3, 1, 1) * 1000
    hsi = plane.expand(31, -1, -1) + torch.arange(31.0).reshape(31, 1, 1) * 1000
    return rgb, hsi


def test_same_permutation_moves_rgb_and_hsi_patches() -> None:
    rgb, hsi = _labelled_pair(nh=4, nw=5, patch=8)
    mixed_rgb, mixed_hsi = mix_patches(rgb, hsi, patch=8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(_patch_labels(mixed_rgb, 8), _patch_labels(mixed_hsi, 8))
    assert not torch.equal(mixed_rgb, rgb)


def test_permutation_is_a_bijection_on_whole_patches() -> None:
    rgb, hsi = _labelled_pair(nh=4, nw=5, patch=8)
    mixed_rgb, mixed_hsi = mix_patches(rgb, hsi, patch=8, generator=torch.Generator().manual_seed(2))
    labels = _patch_labels(mixed_rgb, 8)
    torch.testing.assert_close(labels.sort().values, torch.arange(20, dtype=torch.float32))
    # Every patch moved whole: each pixel equals its patch's corner, per channel offset intact.
    order = labels.long()
    for mixed, original in ((mixed_rgb, rgb), (mixed_hsi, hsi)):
        patches = mixed.reshape(mixed.shape[0], 4, 8, 5, 8).permute(1, 3, 0, 2, 4).reshape(20, -1, 8, 8)
        source = original.reshape(original.shape[0], 4, 8, 5, 8).permute(1, 3, 0, 2, 4).reshape(20, -1, 8, 8)
        torch.testing.assert_close(patches, source[order])


def test_images_are_cropped_to_whole_patches() -> None:
    rgb, hsi = _labelled_pair(nh=3, nw=3, patch=16, extra=7)
    mixed_rgb, mixed_hsi = mix_patches(rgb, hsi, generator=torch.Generator().manual_seed(0))
    assert mixed_rgb.shape == (3, 48, 48)
    assert mixed_hsi.shape == (31, 48, 48)
    assert bool((mixed_rgb >= 0).all())


def test_generator_makes_mixing_reproducible() -> None:
    rgb, hsi = _labelled_pair(nh=4, nw=4, patch=4)
    first = mix_patches(rgb, hsi, patch=4, generator=torch.Generator().manual_seed(7))
    second = mix_patches(rgb, hsi, patch=4, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first[0], second[0])
    assert torch.equal(first[1], second[1])


def test_mix_rejects_mismatched_sizes_and_tiny_images() -> None:
    with pytest.raises(ValueError, match="one size"):
        mix_patches(torch.zeros(3, 32, 32), torch.zeros(31, 32, 16))
    with pytest.raises(ValueError, match="smaller"):
        mix_patches(torch.zeros(3, 8, 32), torch.zeros(31, 8, 32), patch=16)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_brightness_shift_reaches_the_factor(factor: float) -> None:
    rgb = torch.rand(3, 32, 40, generator=torch.Generator().manual_seed(3)) ** 2
    shifted = brightness_shift(rgb, factor)
    assert shifted.shape == rgb.shape
    assert shifted.dtype == rgb.dtype
    assert float(shifted.double().mean() / rgb.double().mean()) == pytest.approx(factor, abs=1e-3)
    assert bool(((shifted >= 0) & (shifted <= 1)).all())


def test_brightness_gamma_direction_and_identity() -> None:
    rgb = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(4))
    assert brightness_gamma(rgb, 1.1) < 1.0 < brightness_gamma(rgb, 0.9)
    assert brightness_gamma(rgb, 1.0) == pytest.approx(1.0, abs=1e-6)


def test_brightness_rejects_unreachable_factors() -> None:
    rgb = torch.full((3, 4, 4), 0.5)
    with pytest.raises(ValueError, match="out of reach"):
        brightness_shift(rgb, 2.5)  # mean of rgb ** gamma cannot pass 1
    with pytest.raises(ValueError, match="black"):
        brightness_shift(torch.zeros(3, 4, 4), 1.1)
