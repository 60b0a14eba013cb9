"""Patch datasets: shapes, determinism given (seed, index), augmentation switches and input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader

from model.config import CAVE_WAVELENGTHS
from model.data.dataset import AugmentConfig, HSIPatchDataset, RGBHSIPatchDataset
from model.data.readers import Cube
from model.data.spectra import make_camera
from model.data.synthesis import render_rgb

RNG = np.random.default_rng(0)
CUBES = [
    Cube(RNG.random((31, 20 + 4 * i, 24), dtype=np.float32), CAVE_WAVELENGTHS, f"c{i}") for i in range(3)
]
CAMERAS = [make_camera(f"cam{i}", CAVE_WAVELENGTHS, RNG.random((31, 3))) for i in range(4)]
LIGHTS = RNG.uniform(0.1, 1.0, size=(5, 31))
FULL = AugmentConfig(relight_prob=0.5, noise=True, jpeg_quality=80)


def test_rgb_hsi_shapes_and_range() -> None:
    ds = RGBHSIPatchDataset(CUBES, 16, CAMERAS, length=10, seed=0, augment=FULL, illuminants=LIGHTS)
    assert len(ds) == 10
    for i in range(len(ds)):
        rgb, hsi = ds[i]
        assert rgb.shape == (3, 16, 16)
        assert hsi.shape == (31, 16, 16)
        assert rgb.dtype == hsi.dtype == torch.float32
        assert float(rgb.min()) >= 0.0
        assert float(rgb.max()) <= 1.0
        assert torch.isfinite(hsi).all()
    with pytest.raises(IndexError):
        ds[10]


def test_rgb_hsi_deterministic_given_seed_and_index() -> None:
    a = RGBHSIPatchDataset(CUBES, 8, CAMERAS, length=6, seed=3, augment=FULL, illuminants=LIGHTS)
    b = RGBHSIPatchDataset(CUBES, 8, CAMERAS, length=6, seed=3, augment=FULL, illuminants=LIGHTS)
    c = RGBHSIPatchDataset(CUBES, 8, CAMERAS, length=6, seed=4, augment=FULL, illuminants=LIGHTS)
    for i in reversed(range(6)):
        assert torch.equal(a[i][0], b[i][0])
        assert torch.equal(a[i][1], b[i][1])
    assert not torch.equal(a[0][1], a[1][1])
    assert not torch.equal(a[0][1], c[0][1])


def test_without_noise_rgb_is_the_rendered_target() -> None:
    aug = AugmentConfig(random_camera=False)
    ds = RGBHSIPatchDataset(CUBES, 8, CAMERAS, length=4, seed=0, augment=aug)
    for i in range(4):
        rgb, hsi = ds[i]
        np.testing.assert_allclose(rgb.numpy(), render_rgb(hsi.numpy(), CAMERAS[0]), atol=1e-6)


def test_patches_do_not_alias_the_cubes() -> None:
    cube = Cube(np.full((31, 8, 8), 0.5, dtype=np.float32), CAVE_WAVELENGTHS, "one")
    aug = AugmentConfig(flip=False, rotate=False)
    _, hsi = RGBHSIPatchDataset([cube], 8, CAMERAS, length=1, augment=aug)[0]
    hsi.zero_()
    assert cube.data.min() == 0.5


def test_loader_batches() -> None:
    ds = RGBHSIPatchDataset(CUBES, 8, CAMERAS, length=8, seed=0)
    rgb, hsi = next(iter(DataLoader(ds, batch_size=4)))
    assert rgb.shape == (4, 3, 8, 8)
    assert hsi.shape == (4, 31, 8, 8)


def test_rgb_hsi_input_checks() -> None:
    with pytest.raises(ValueError, match="smaller than patch"):
        RGBHSIPatchDataset(CUBES, 21, CAMERAS, length=1)
    with pytest.raises(ValueError, match="illuminants"):
        RGBHSIPatchDataset(CUBES, 8, CAMERAS, length=1, augment=AugmentConfig(relight_prob=0.2))
    odd = make_camera(
        "odd", tuple(w + 1 for w in CAVE_WAVELENGTHS), np.ones((31, 3)), target=range(401, 702, 10)
    )
    with pytest.raises(ValueError, match="grid"):
        RGBHSIPatchDataset(CUBES, 8, [odd], length=1)
    with pytest.raises(ValueError, match="relight_prob"):
        AugmentConfig(relight_prob=1.5)


def test_hsi_patches_per_source() -> None:
    remote = [Cube(RNG.random((5, 12, 12), dtype=np.float32), (450.0, 550.0, 650.0, 750.0, 850.0), "r")]
    cave = HSIPatchDataset(CUBES, dataset_index=0, patch_size=8, length=5, seed=1)
    rs = HSIPatchDataset(remote, dataset_index=1, patch_size=8, length=3, seed=1)
    both: ConcatDataset[tuple[torch.Tensor, int]] = ConcatDataset([cave, rs])
    assert len(both) == 8
    hsi, idx = both[0]
    assert hsi.shape == (31, 8, 8)
    assert idx == 0
    hsi, idx = both[6]
    assert hsi.shape == (5, 8, 8)
    assert idx == 1
    assert torch.equal(cave[2][0], HSIPatchDataset(CUBES, 0, 8, 5, seed=1)[2][0])
    assert not torch.equal(cave[2][0], HSIPatchDataset(CUBES, 0, 8, 5, seed=2)[2][0])
    with pytest.raises(ValueError, match="wavelengths differ"):
        HSIPatchDataset([*CUBES, remote[0]], 0, 8, 5)


def test_with_response_adds_the_camera_that_rendered_the_pair() -> None:
    ds = RGBHSIPatchDataset(CUBES, 8, CAMERAS, length=4, seed=1, with_response=True)
    for i in range(4):
        rgb, hsi, response = ds[i]
        assert response.shape == (hsi.shape[0], 3)
        rendered = torch.einsum("khw,kc->chw", hsi, response).clamp(0, 1)
        assert torch.allclose(rgb, rendered, atol=1e-5)
