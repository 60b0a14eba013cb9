"""The training data of the bundled weights, read in place from a `shared/data`-style folder.

Stage 1 sources (one codebook each, MODEL.md "Mixture of Codebooks"):
- `cave`: the CAVE training scenes, 31 bands 400-700 nm;
- `remote`: the two airborne cubes, Jasper Ridge resampled onto Samson's 156 bands (401-899 nm) so
  the two sensors share one input/output conv;
- `synthetic` (optional): cubes built from measured reflectances under measured illuminants.
Stage 2 trains on CAVE's training scenes only; the validation scenes below never enter training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.config import DatasetSpec
from model.data import Cube, list_cave_scenes, load_cameras, load_spectra_dir, read_cave, read_envi
from model.data.spectra import CameraResponse
from model.data.synthesis import make_synthetic_cubes

# Scene-disjoint validation split of shared/data/cave (5 of 22 scenes, varied content; the data's
# README says none of CAVE's near-duplicate pairs is split across this set).
CAVE_VAL_SCENES: tuple[str, ...] = (
    "beads",
    "egyptian_statue",
    "fake_and_real_tomatoes",
    "jelly_beans",
    "stuffed_toys",
)
DEFAULT_CAMERA = "cie_1964"


@dataclass(frozen=True)
class Source:
    spec: DatasetSpec
    cubes: tuple[Cube, ...]


def cave_split(cave_root: Path) -> tuple[list[Cube], list[Cube]]:
    """(train, val) cubes of a CAVE-layout folder, split by `CAVE_VAL_SCENES`."""
    cubes = [read_cave(p) for p in list_cave_scenes(cave_root)]
    train = [c for c in cubes if c.name not in CAVE_VAL_SCENES]
    val = [c for c in cubes if c.name in CAVE_VAL_SCENES]
    return train, val


def remote_cubes(remote_root: Path) -> list[Cube]:
    """Samson and Jasper Ridge on Samson's wavelength grid (Jasper resampled by linear interpolation)."""
    samson = read_envi(remote_root / "samson_1.img")
    jasper = read_envi(remote_root / "jasperRidge2_R198.img")
    grid = np.asarray(samson.wavelengths_nm)
    src = np.asarray(jasper.wavelengths_nm)
    flat = jasper.data.reshape(jasper.bands, -1)
    resampled = np.stack([np.interp(grid, src, flat[:, i]) for i in range(flat.shape[1])], axis=1)
    jasper_on_grid = Cube(
        resampled.reshape(len(grid), *jasper.shape[1:]).astype(np.float32),
        samson.wavelengths_nm,
        jasper.name,
        jasper.source,
    )
    return [samson, jasper_on_grid]


def synthetic_cubes(spectra_root: Path, count: int, size: int, seed: int) -> list[Cube]:
    surfaces = load_spectra_dir(spectra_root / "surfaces")
    illuminants = load_spectra_dir(spectra_root / "illuminants")
    return make_synthetic_cubes(surfaces, illuminants, count, (size, size), seed)


def stage1_sources(data_root: Path, synthetic: int = 0, seed: int = 0) -> list[Source]:
    """The stage-1 sources; `synthetic` > 0 adds that many synthetic 128x128 cubes as a third."""
    train, _ = cave_split(data_root / "cave")
    remote = remote_cubes(data_root / "remote")
    sources = [
        Source(DatasetSpec("cave", train[0].wavelengths_nm), tuple(train)),
        Source(DatasetSpec("remote", remote[0].wavelengths_nm), tuple(remote)),
    ]
    if synthetic:
        syn = synthetic_cubes(data_root / "spectra", synthetic, 128, seed)
        sources.append(Source(DatasetSpec("synthetic", syn[0].wavelengths_nm), tuple(syn)))
    return sources


def cameras(cameras_root: Path) -> tuple[CameraResponse, list[CameraResponse]]:
    """The default (training and re-projection) camera and every camera for augmentation."""
    all_cams = load_cameras(cameras_root)
    default = all_cams[DEFAULT_CAMERA]
    return default, [default, *(c for n, c in all_cams.items() if n != DEFAULT_CAMERA)]
