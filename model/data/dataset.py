"""Torch datasets of random training patches drawn from cubes held in memory.

`RGBHSIPatchDataset` (stage 2): (rgb (3, p, p), hsi (31, p, p)), the RGB rendered on the fly through a
camera with the configured augmentations. `HSIPatchDataset` (stage 1): (hsi (bands, p, p), dataset_index)
from one HSI source; combine sources with `torch.utils.data.ConcatDataset` and batch per source, since
sources differ in band count. Item `i` is drawn from `numpy.random.default_rng((seed, [dataset_index,] i))`,
so a sample depends only on (seed, index): not on workers, order or epoch; change the seed per epoch for
new patches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from model.data.readers import Cube
from model.data.spectra import CameraResponse
from model.data.synthesis import (
    add_sensor_noise,
    jpeg_roundtrip,
    random_camera,
    random_crop,
    random_dihedral,
    relight,
    render_rgb,
)


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations the RGB/HSI patch dataset applies, and how strongly."""

    flip: bool = True
    rotate: bool = True
    random_camera: bool = True  # False: always the first camera
    relight_prob: float = 0.0  # needs illuminants; the HSI target is relit too (it is the scene radiance)
    noise: bool = False
    peak_photons: float = 1000.0
    read_std: float = 0.002
    jpeg_quality: int | None = None  # None: no JPEG round trip

    def __post_init__(self) -> None:
        if not 0.0 <= self.relight_prob <= 1.0:
            raise ValueError(f"relight_prob must be in [0, 1], got {self.relight_prob}")


def _check_cubes(cubes: Sequence[Cube], patch_size: int) -> tuple[float, ...]:
    """The shared wavelength grid of `cubes`, after checking each can hold a patch."""
    if not cubes:
        raise ValueError("need at least one cube")
    if patch_size < 1:
        raise ValueError(f"patch_size must be positive, got {patch_size}")
    grid = cubes[0].wavelengths_nm
    for cube in cubes:
        if cube.wavelengths_nm != grid:
            raise ValueError(f"{cube.name}: wavelengths differ from {cubes[0].name}'s")
        if patch_size > min(cube.shape[1:]):
            raise ValueError(
                f"{cube.name}: {cube.shape[1]}x{cube.shape[2]} is smaller than patch {patch_size}"
            )
    return grid


class RGBHSIPatchDataset(Dataset[tuple[torch.Tensor, ...]]):
    """`length` random (rgb (3, p, p), hsi (bands, p, p)) float32 pairs rendered from in-memory cubes;
    with `with_response`, also the (bands, 3) response of the camera that rendered the pair.

    Per item: pick a cube, crop, flip/rotate, optionally relight (target too), render through a camera,
    then optionally add sensor noise and a JPEG round trip (RGB only)."""

    def __init__(
        self,
        cubes: Sequence[Cube],
        patch_size: int,
        cameras: Sequence[CameraResponse],
        length: int,
        seed: int = 0,
        augment: AugmentConfig | None = None,
        illuminants: np.ndarray | None = None,
        with_response: bool = False,
    ) -> None:
        grid = _check_cubes(cubes, patch_size)
        if not cameras:
            raise ValueError("need at least one camera")
        for cam in cameras:
            if cam.wavelengths_nm != grid:
                raise ValueError(f"camera {cam.name!r} is not on the cubes' wavelength grid")
        self.augment = augment or AugmentConfig()
        if self.augment.relight_prob > 0 and (illuminants is None or illuminants.shape[-1] != len(grid)):
            raise ValueError("relighting needs illuminants (M, bands) on the cubes' grid")
        self.cubes = [c.data for c in cubes]
        self.cameras = list(cameras)
        self.patch_size, self.length, self.seed = patch_size, length, seed
        self.illuminants = illuminants
        self.with_response = with_response

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        aug, rng = self.augment, np.random.default_rng((self.seed, index))
        cube = self.cubes[int(rng.integers(0, len(self.cubes)))]
        (hsi,) = random_dihedral(random_crop([cube], self.patch_size, rng), rng, aug.flip, aug.rotate)
        if self.illuminants is not None and rng.random() < aug.relight_prob:
            hsi = relight(hsi, self.illuminants[int(rng.integers(0, len(self.illuminants)))])
        camera = random_camera(self.cameras, rng) if aug.random_camera else self.cameras[0]
        rgb = render_rgb(hsi, camera)
        if aug.noise:
            rgb = add_sensor_noise(rgb, rng, aug.peak_photons, aug.read_std)
        if aug.jpeg_quality is not None:
            rgb = jpeg_roundtrip(rgb, aug.jpeg_quality)
        pair = (torch.from_numpy(np.clip(rgb, 0.0, 1.0)), torch.from_numpy(hsi))
        return (*pair, torch.from_numpy(camera.matrix)) if self.with_response else pair


class HSIPatchDataset(Dataset[tuple[torch.Tensor, int]]):
    """`length` random (hsi (bands, p, p) float32, dataset_index) patches from one stage-1 HSI source."""

    def __init__(
        self,
        cubes: Sequence[Cube],
        dataset_index: int,
        patch_size: int,
        length: int,
        seed: int = 0,
        flip: bool = True,
        rotate: bool = True,
    ) -> None:
        self.wavelengths_nm = _check_cubes(cubes, patch_size)
        self.cubes = [c.data for c in cubes]
        self.dataset_index, self.patch_size, self.length, self.seed = dataset_index, patch_size, length, seed
        self.flip, self.rotate = flip, rotate

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = np.random.default_rng((self.seed, self.dataset_index, index))
        cube = self.cubes[int(rng.integers(0, len(self.cubes)))]
        (hsi,) = random_dihedral(random_crop([cube], self.patch_size, rng), rng, self.flip, self.rotate)
        return torch.from_numpy(hsi), self.dataset_index
