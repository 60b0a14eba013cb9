"""Measured spectra on the 31-band grid (400..700 nm step 10): camera responses, reflectances, illuminants.

Camera responses are normalised so that a perfect white reflector (a cube of ones) renders to linear RGB
whose largest channel is exactly 1.0: every response is non-negative, so any cube in [0, 1] then renders
inside [0, 1], whatever the camera's native gain (the NTIRE files sum to 255 or 65535 per channel).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from model.config import CAVE_WAVELENGTHS

logger = logging.getLogger(__name__)

GRID_NM: tuple[float, ...] = CAVE_WAVELENGTHS


@dataclass(frozen=True, eq=False)
class CameraResponse:
    """An RGB camera's spectral sensitivities: `matrix` (bands, 3) float32, so rgb = cube^T @ matrix."""

    name: str
    wavelengths_nm: tuple[float, ...]
    matrix: np.ndarray

    def __post_init__(self) -> None:
        if self.matrix.shape != (len(self.wavelengths_nm), 3):
            raise ValueError(
                f"{self.name}: matrix {self.matrix.shape} does not match "
                f"{len(self.wavelengths_nm)} wavelengths x 3 channels"
            )


@dataclass(frozen=True, eq=False)
class SpectralSet:
    """Measured spectra resampled to one grid: `spectra` (N, bands) float32, one row per sample."""

    name: str
    wavelengths_nm: tuple[float, ...]
    spectra: np.ndarray

    def __len__(self) -> int:
        return int(self.spectra.shape[0])


def resample(
    wavelengths: Sequence[float] | np.ndarray, values: np.ndarray, target: Sequence[float] = GRID_NM
) -> np.ndarray:
    """Linearly interpolate `values` (len(wavelengths), K) onto `target`; zero outside the measured range."""
    wl = np.asarray(wavelengths, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64).reshape(len(wl), -1)
    out = [np.interp(target, wl, vals[:, k], left=0.0, right=0.0) for k in range(vals.shape[1])]
    return np.stack(out, axis=1)


def normalise_response(matrix: np.ndarray) -> np.ndarray:
    """Scale (bands, 3) so the all-ones cube maps to RGB with max channel 1 (see the module docstring)."""
    white = np.asarray(matrix, dtype=np.float64).sum(axis=0)
    if np.any(np.asarray(matrix) < 0) or white.max() <= 0:
        raise ValueError("a camera response must be non-negative and not all zero")
    return (np.asarray(matrix, dtype=np.float64) / white.max()).astype(np.float32)


def make_camera(
    name: str,
    wavelengths: Sequence[float] | np.ndarray,
    matrix: np.ndarray,
    target: Sequence[float] = GRID_NM,
) -> CameraResponse:
    """A normalised `CameraResponse` on `target` from sensitivities sampled at `wavelengths`."""
    resampled = resample(wavelengths, np.asarray(matrix), target)
    return CameraResponse(name, tuple(float(w) for w in target), normalise_response(resampled))


def load_ntire_camera(path: Path | str, name: str | None = None) -> CameraResponse:
    """An NTIRE 2020 starter-kit response (`filters` (N, 3), `bands` (1, N)), e.g. cie_1964_w_gain.npz.

    Without `bands`, 31 rows are taken as 400..700 nm in 10 nm steps; anything else is a ValueError
    naming the file."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as npz:
        if "filters" not in npz.files:
            raise ValueError(f"{path}: no `filters` array (keys: {sorted(npz.files)})")
        filters = np.asarray(npz["filters"], dtype=np.float64)
        bands = npz["bands"].ravel() if "bands" in npz.files else None
    if bands is None and filters.shape[0] == len(GRID_NM):
        bands = np.asarray(GRID_NM)
    if bands is None or filters.ndim != 2 or filters.shape != (bands.size, 3):
        raise ValueError(
            f"{path}: `filters` must be (bands, 3) with `bands` its wavelengths (or 31 rows at 400..700 nm),"
            f" got filters {filters.shape} and bands {None if bands is None else bands.shape}"
        )
    return make_camera(name or path.stem.removesuffix("_w_gain"), bands.tolist(), filters)


def load_jiang2013_cameras(path: Path | str) -> list[CameraResponse]:
    """The 24 measured cameras of Jiang et al. 2013 (`ssf` (24, 33, 3) at 400..720 nm), cut to 400..700."""
    with np.load(Path(path), allow_pickle=False) as npz:
        wavelengths, names, ssf = npz["wavelengths"], npz["names"], npz["ssf"]
    return [make_camera(str(n), wavelengths.tolist(), ssf[i]) for i, n in enumerate(names)]


def load_cameras(cameras_dir: Path | str) -> dict[str, CameraResponse]:
    """Every camera in the shared `cameras/` folder by name: `cie_1964`, `example_D40`, then Jiang's 24."""
    root = Path(cameras_dir)
    cams = [
        load_ntire_camera(root / "cie_1964_w_gain.npz"),
        load_ntire_camera(root / "example_D40_camera_w_gain.npz", "example_D40"),
        *load_jiang2013_cameras(root / "jiang2013_cameras.npz"),
    ]
    return {c.name: c for c in cams}


def _fill_nan(wavelengths: np.ndarray, column: np.ndarray) -> np.ndarray:
    """Interpolate missing samples (some ISET sets lack 400 nm for a few columns), holding the ends."""
    ok = np.isfinite(column)
    return column if ok.all() else np.interp(wavelengths, wavelengths[ok], column[ok])


def load_spectra_mat(path: Path | str, target: Sequence[float] = GRID_NM) -> SpectralSet:
    """A MATLAB v5 spectra file (`wavelength`, `data` (wavelength x N)) resampled to `target`.

    NaN samples are interpolated from their neighbours and columns with no finite value are dropped.
    """
    path = Path(path)
    mat = scipy.io.loadmat(path)
    wl = np.asarray(mat["wavelength"], dtype=np.float64).ravel()
    data = np.asarray(mat["data"], dtype=np.float64).reshape(len(wl), -1)
    keep = np.isfinite(data).any(axis=0)
    if not keep.all():
        logger.warning("%s: dropping %d all-NaN spectra", path, int((~keep).sum()))
    cols = np.stack([_fill_nan(wl, data[:, k]) for k in np.flatnonzero(keep)], axis=1)
    spectra = resample(wl, cols, target).T.astype(np.float32)
    return SpectralSet(path.stem, tuple(float(w) for w in target), spectra)


def load_spectra_dir(folder: Path | str, target: Sequence[float] = GRID_NM) -> SpectralSet:
    """All `.mat` files of a folder (e.g. `spectra/surfaces`) stacked into one set, in file-name order.

    Exact duplicates are dropped (ISET's `reflectance.mat` repeats Vhrel spectra), so random draws are
    not biased towards the repeated ones."""
    folder = Path(folder)
    sets = [load_spectra_mat(p, target) for p in sorted(folder.glob("*.mat"))]
    if not sets:
        raise FileNotFoundError(f"no .mat spectra in {folder}")
    stacked = np.concatenate([s.spectra for s in sets])
    _, first = np.unique(stacked, axis=0, return_index=True)
    if len(first) < len(stacked):
        logger.info("%s: dropped %d duplicate spectra", folder, len(stacked) - len(first))
    return SpectralSet(folder.name, sets[0].wavelengths_nm, stacked[np.sort(first)])


def normalise_illuminant(spd: np.ndarray) -> np.ndarray:
    """An illuminant spectrum scaled to max 1 (so relit reflectance stays in [0, 1])."""
    spd = np.asarray(spd, dtype=np.float32)
    peak = float(spd.max())
    if peak <= 0:
        raise ValueError("an illuminant spectrum must have a positive maximum")
    return spd / np.float32(peak)
