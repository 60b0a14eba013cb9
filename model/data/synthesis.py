"""NTIRE-style RGB synthesis from hyperspectral cubes, the augmentations a real camera stream needs, and
synthetic cubes built from measured reflectances under measured illuminants.

Every random function takes a `numpy.random.Generator`, so a (seed, index) pair fixes a sample exactly.
Arrays are channels-first: cubes (bands, H, W), RGB (3, H, W).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Literal

import numpy as np
from PIL import Image

from model.data.readers import Cube
from model.data.spectra import CameraResponse, SpectralSet, normalise_illuminant

SyntheticKind = Literal["mosaic", "blend"]


def render_rgb(cube_bhw: np.ndarray, camera: CameraResponse) -> np.ndarray:
    """Linear RGB (3, H, W) float32: each pixel's spectrum projected through the camera's responses.

    With a normalised camera (see `spectra`), a cube in [0, 1] renders into [0, 1]."""
    if cube_bhw.ndim != 3 or cube_bhw.shape[0] != camera.matrix.shape[0]:
        raise ValueError(
            f"cube {cube_bhw.shape} does not match camera {camera.name!r} ({camera.matrix.shape[0]} bands)"
        )
    rgb = np.einsum("bhw,bc->chw", cube_bhw.astype(np.float32, copy=False), camera.matrix)
    return rgb.astype(np.float32, copy=False)


def add_sensor_noise(
    rgb: np.ndarray, rng: np.random.Generator, peak_photons: float = 1000.0, read_std: float = 0.002
) -> np.ndarray:
    """Poisson-Gaussian noise: shot noise with `peak_photons` electrons at value 1.0 plus Gaussian read
    noise of std `read_std` (in [0, 1] units), clipped to [0, 1] like a sensor's range."""
    if peak_photons <= 0 or read_std < 0:
        raise ValueError("peak_photons must be > 0 and read_std >= 0")
    electrons = rng.poisson(np.clip(rgb, 0.0, None).astype(np.float64) * peak_photons)
    noisy = electrons / peak_photons + rng.normal(0.0, read_std, size=rgb.shape)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Linear [0, 1] -> sRGB-encoded [0, 1] (IEC 61966-2-1 transfer curve)."""
    x = np.clip(linear, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """sRGB-encoded [0, 1] -> linear [0, 1], the inverse of `srgb_encode`."""
    x = np.clip(encoded, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, np.power((x + 0.055) / 1.055, 2.4)).astype(np.float32)


def jpeg_roundtrip(rgb_chw: np.ndarray, quality: int) -> np.ndarray:
    """Linear RGB after 8-bit JPEG compression at `quality` (1-95), as a camera's output would carry.

    A real camera gamma-encodes before quantising to 8 bits and compressing, so the artefacts land
    mostly in the highlights of linear values; we sRGB-encode, JPEG with Pillow, decode, and linearise."""
    if not 1 <= quality <= 95:
        raise ValueError(f"JPEG quality must be in 1..95, got {quality}")
    encoded = np.round(srgb_encode(rgb_chw).transpose(1, 2, 0) * 255.0).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(encoded).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as img:
        decoded = np.asarray(img.convert("RGB"), dtype=np.float32) / np.float32(255.0)
    return srgb_decode(decoded).transpose(2, 0, 1).copy()


def relight(cube_bhw: np.ndarray, illuminant: np.ndarray) -> np.ndarray:
    """The cube under a new light: reflectance x illuminant spectrum (normalised to max 1).

    Assumes the cube is approximately reflectance: CAVE publishes its cubes as reflectance data, though
    without absolute calibration, so this changes the light's colour without pushing values above 1."""
    spd = normalise_illuminant(illuminant)
    if spd.shape != (cube_bhw.shape[0],):
        raise ValueError(f"illuminant has {spd.shape} samples, cube has {cube_bhw.shape[0]} bands")
    return (cube_bhw * spd[:, None, None]).astype(np.float32)


def random_crop(arrays: Sequence[np.ndarray], size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The same random `size` x `size` window of every (C, H, W) array (all share H and W)."""
    h, w = arrays[0].shape[-2:]
    if any(a.shape[-2:] != (h, w) for a in arrays):
        raise ValueError("arrays to crop together must share H and W")
    if size > min(h, w):
        raise ValueError(f"crop {size} larger than the image {h}x{w}")
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return [a[..., y : y + size, x : x + size] for a in arrays]


def random_dihedral(
    arrays: Sequence[np.ndarray], rng: np.random.Generator, flip: bool = True, rotate: bool = True
) -> list[np.ndarray]:
    """The same random horizontal flip and 90-degree rotation of every (C, H, W) array, as fresh copies.

    Both draws always happen, so the generator's state after the call does not depend on the flags."""
    k, mirror = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
    out = []
    for a in arrays:
        if rotate and k:
            a = np.rot90(a, k, axes=(-2, -1))
        if flip and mirror:
            a = a[..., ::-1]
        out.append(np.array(a, order="C"))
    return out


def random_camera(cameras: Sequence[CameraResponse], rng: np.random.Generator) -> CameraResponse:
    """One camera drawn uniformly, e.g. from Jiang 2013's 24 real cameras, to avoid fitting one response."""
    return cameras[int(rng.integers(0, len(cameras)))]


def _smooth_field(shape: tuple[int, int], channels: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """Random (channels, H, W) values in [0, 1] varying smoothly: a coarse grid, bilinearly upsampled."""
    h, w = shape
    grid = rng.random((channels, cells + 1, cells + 1))
    ys, xs = np.linspace(0, cells, h), np.linspace(0, cells, w)
    y0, x0 = np.minimum(ys.astype(int), cells - 1), np.minimum(xs.astype(int), cells - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    g00, g01 = grid[:, y0][:, :, x0], grid[:, y0][:, :, x0 + 1]
    g10, g11 = grid[:, y0 + 1][:, :, x0], grid[:, y0 + 1][:, :, x0 + 1]
    return g00 * (1 - fy) * (1 - fx) + g01 * (1 - fy) * fx + g10 * fy * (1 - fx) + g11 * fy * fx


def synthesize_cube(
    surfaces: np.ndarray,
    illuminants: np.ndarray,
    shape: tuple[int, int],
    rng: np.random.Generator,
    kind: SyntheticKind = "mosaic",
    regions: int = 12,
    shading: bool = True,
) -> np.ndarray:
    """A (bands, H, W) float32 cube in [0, 1] from measured spectra, for the synthetic stage-1 source.

    `surfaces` (N, bands) reflectances and `illuminants` (M, bands) spectra. "mosaic": a Voronoi tiling
    into `regions` patches, each one random surface (piecewise-constant, sharp edges); "blend": `regions`
    random surfaces mixed by smooth abundance maps (the linear mixing model of remote sensing). One random
    illuminant (normalised to max 1) lights the scene, and optional smooth shading in [0.3, 1] varies the
    brightness, so spectra keep their shape while intensity varies as in real scenes."""
    h, w = shape
    if surfaces.ndim != 2 or illuminants.ndim != 2 or surfaces.shape[1] != illuminants.shape[1]:
        raise ValueError("surfaces (N, bands) and illuminants (M, bands) must share the band axis")
    picks = surfaces[rng.integers(0, surfaces.shape[0], size=regions)].astype(np.float32)
    if kind == "mosaic":
        seeds = rng.random((regions, 2)) * np.array([h, w])
        yy, xx = np.mgrid[0:h, 0:w]
        dist = (yy[None] - seeds[:, 0, None, None]) ** 2 + (xx[None] - seeds[:, 1, None, None]) ** 2
        cube = picks[np.argmin(dist, axis=0)].transpose(2, 0, 1)
    elif kind == "blend":
        weights = _smooth_field(shape, regions, cells=3, rng=rng) ** 4
        weights /= weights.sum(axis=0, keepdims=True)
        cube = np.einsum("nhw,nb->bhw", weights.astype(np.float32), picks)
    else:
        raise ValueError(f"unknown synthetic kind {kind!r}")
    spd = normalise_illuminant(illuminants[int(rng.integers(0, illuminants.shape[0]))])
    cube = cube * spd[:, None, None]
    if shading:
        cube = cube * (0.3 + 0.7 * _smooth_field(shape, 1, cells=2, rng=rng)).astype(np.float32)
    return np.clip(cube, 0.0, 1.0).astype(np.float32)


def make_synthetic_cubes(
    surfaces: SpectralSet, illuminants: SpectralSet, count: int, shape: tuple[int, int], seed: int
) -> list[Cube]:
    """`count` synthetic cubes, alternating "mosaic" and "blend", each fixed by (seed, its index)."""
    if surfaces.wavelengths_nm != illuminants.wavelengths_nm:
        raise ValueError("surfaces and illuminants must share one wavelength grid")
    cubes = []
    for i in range(count):
        rng = np.random.default_rng((seed, i))
        kind: SyntheticKind = "mosaic" if i % 2 == 0 else "blend"
        data = synthesize_cube(surfaces.spectra, illuminants.spectra, shape, rng, kind=kind)
        cubes.append(Cube(data, surfaces.wavelengths_nm, f"synthetic_{kind}_{i:04d}"))
    return cubes
