"""RGB rendering, camera normalisation, noise, JPEG, relighting, paired augmentation and synthetic cubes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from model.config import CAVE_WAVELENGTHS
from model.data.spectra import (
    CameraResponse,
    load_cameras,
    load_ntire_camera,
    load_spectra_dir,
    load_spectra_mat,
    make_camera,
    normalise_illuminant,
)
from model.data.synthesis import (
    add_sensor_noise,
    jpeg_roundtrip,
    make_synthetic_cubes,
    random_crop,
    random_dihedral,
    relight,
    render_rgb,
    srgb_decode,
    srgb_encode,
    synthesize_cube,
)


def _camera(seed: int = 0, gain: float = 255.0) -> CameraResponse:
    rng = np.random.default_rng(seed)
    return make_camera("toy", CAVE_WAVELENGTHS, rng.random((31, 3)) * gain)


def _cube(h: int = 8, w: int = 8, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((31, h, w), dtype=np.float32)


def test_render_is_linear() -> None:
    cam, a, b = _camera(), _cube(seed=1), _cube(seed=2)
    np.testing.assert_allclose(
        render_rgb(0.3 * a + 0.5 * b, cam), 0.3 * render_rgb(a, cam) + 0.5 * render_rgb(b, cam), atol=1e-6
    )
    assert render_rgb(a, cam).shape == (3, 8, 8)
    assert render_rgb(a, cam).dtype == np.float32


def test_white_reflector_renders_to_max_one() -> None:
    for gain in (1.0, 255.0, 65535.0):
        rgb = render_rgb(np.ones((31, 2, 2), dtype=np.float32), _camera(gain=gain))
        assert rgb.max() == pytest.approx(1.0, abs=1e-6)
        assert rgb.min() > 0


def test_render_rejects_band_mismatch() -> None:
    with pytest.raises(ValueError, match="does not match camera"):
        render_rgb(np.zeros((30, 2, 2), dtype=np.float32), _camera())


def test_make_camera_resamples_onto_grid() -> None:
    wl = np.arange(400.0, 721.0, 10.0)
    cam = make_camera("jiang", wl, np.ones((33, 3)))
    assert cam.matrix.shape == (31, 3)
    assert cam.wavelengths_nm == CAVE_WAVELENGTHS
    with pytest.raises(ValueError, match="non-negative"):
        make_camera("bad", CAVE_WAVELENGTHS, -np.ones((31, 3)))


def test_noise_is_seeded_and_unbiased() -> None:
    rgb = np.full((3, 64, 64), 0.25, dtype=np.float32)
    a = add_sensor_noise(rgb, np.random.default_rng(7), peak_photons=400.0, read_std=0.01)
    b = add_sensor_noise(rgb, np.random.default_rng(7), peak_photons=400.0, read_std=0.01)
    c = add_sensor_noise(rgb, np.random.default_rng(8), peak_photons=400.0, read_std=0.01)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.mean() == pytest.approx(0.25, abs=0.005)
    assert a.std() == pytest.approx(np.sqrt(0.25 / 400 + 0.01**2), rel=0.1)  # Poisson + Gaussian variances
    assert a.min() >= 0.0


def test_srgb_round_trip() -> None:
    x = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(srgb_decode(srgb_encode(x)), x, atol=1e-6)
    assert srgb_encode(np.array([0.18]))[0] == pytest.approx(0.4614, abs=1e-3)


def test_jpeg_round_trip_degrades_with_quality() -> None:
    yy, xx = np.mgrid[0:32, 0:32] / 32.0
    rgb = np.stack([yy, xx, (yy + xx) / 2]).astype(np.float32) * 0.8
    hi, lo = jpeg_roundtrip(rgb, 95), jpeg_roundtrip(rgb, 10)
    assert hi.shape == rgb.shape
    assert hi.dtype == np.float32
    assert np.abs(hi - rgb).mean() < 0.01
    assert np.abs(lo - rgb).mean() > np.abs(hi - rgb).mean()
    with pytest.raises(ValueError, match="quality"):
        jpeg_roundtrip(rgb, 0)


def test_relight_scales_by_normalised_illuminant() -> None:
    cube, spd = _cube(), np.linspace(2.0, 4.0, 31)
    out = relight(cube, spd)
    np.testing.assert_allclose(out, cube * (spd / 4.0)[:, None, None], rtol=1e-6)
    assert out.max() <= 1.0
    with pytest.raises(ValueError, match="positive maximum"):
        normalise_illuminant(np.zeros(31))


def test_paired_augmentation_is_identical() -> None:
    hsi, cam = _cube(12, 10), _camera()
    rgb = render_rgb(hsi, cam)
    seen = set()
    for seed in range(40):
        rng = np.random.default_rng(seed)
        rgb_p, hsi_p = random_dihedral(random_crop([rgb, hsi], 6, rng), rng)
        assert rgb_p.shape == (3, 6, 6)
        assert hsi_p.shape == (31, 6, 6)
        np.testing.assert_allclose(render_rgb(hsi_p, cam), rgb_p, atol=1e-6)  # rendering commutes
        seen.add(hsi_p.tobytes())
    assert len(seen) > 20


def test_dihedral_flags_and_copies() -> None:
    x = _cube(4, 4)
    (same,) = random_dihedral([x], np.random.default_rng(3), flip=False, rotate=False)
    np.testing.assert_array_equal(same, x)
    assert not np.shares_memory(same, x)
    with pytest.raises(ValueError, match="larger"):
        random_crop([x], 5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="share H and W"):
        random_crop([x, x[:, :3]], 2, np.random.default_rng(0))


def _spectra(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.05, 0.9, size=(n, 31)).astype(np.float32)


def test_synthetic_mosaic_is_piecewise_constant() -> None:
    surfaces, lights = _spectra(50, 0), _spectra(3, 1)
    cube = synthesize_cube(surfaces, lights, (24, 20), np.random.default_rng(0), "mosaic", 6, shading=False)
    assert cube.shape == (31, 24, 20)
    assert len(np.unique(cube.reshape(31, -1), axis=1).T) <= 6
    again = synthesize_cube(surfaces, lights, (24, 20), np.random.default_rng(0), "mosaic", 6, shading=False)
    np.testing.assert_array_equal(cube, again)


def test_synthetic_blend_is_smooth_and_in_range() -> None:
    cube = synthesize_cube(_spectra(50, 0), _spectra(3, 1), (32, 32), np.random.default_rng(1), "blend")
    assert cube.dtype == np.float32
    assert cube.min() >= 0.0
    assert cube.max() <= 1.0
    assert np.abs(np.diff(cube, axis=-1)).max() < 0.2  # no hard edges
    with pytest.raises(ValueError, match="kind"):
        synthesize_cube(_spectra(5, 0), _spectra(3, 1), (4, 4), np.random.default_rng(0), "stripes")  # type: ignore[arg-type]


def test_spectra_mat_fills_nan(tmp_path: Path) -> None:
    data = np.tile(np.linspace(0.1, 0.7, 31)[:, None], (1, 3))
    data[0, 1] = np.nan
    data[:, 2] = np.nan
    scipy.io.savemat(tmp_path / "s.mat", {"wavelength": np.arange(400, 701, 10)[None], "data": data})
    spectra = load_spectra_mat(tmp_path / "s.mat")
    assert spectra.spectra.shape == (2, 31)  # the all-NaN column is dropped
    assert spectra.spectra[1, 0] == pytest.approx(0.12)  # held from 410 nm
    cubes = make_synthetic_cubes(spectra, spectra, 2, (8, 8), seed=0)
    assert [c.name for c in cubes] == ["synthetic_mosaic_0000", "synthetic_blend_0001"]


def test_ntire_camera_file_keys(tmp_path: Path) -> None:
    filters = np.random.default_rng(0).uniform(0.1, 1.0, size=(31, 3))
    np.savez(tmp_path / "with_bands.npz", filters=filters, bands=np.arange(400, 701, 10)[None])
    np.savez(tmp_path / "no_bands.npz", filters=filters)  # 31 rows: taken as 400..700 nm
    a, b = (load_ntire_camera(tmp_path / f) for f in ("with_bands.npz", "no_bands.npz"))
    np.testing.assert_allclose(a.matrix, b.matrix)
    np.savez(tmp_path / "no_filters.npz", ssf_typo=filters)
    np.savez(tmp_path / "odd.npz", filters=filters[:20])
    np.savez(tmp_path / "mismatch.npz", filters=filters, bands=np.arange(400, 701, 20))
    for name, says in (("no_filters", "no `filters`"), ("odd", "(20, 3)"), ("mismatch", "(16,)")):
        with pytest.raises(ValueError, match=rf"{name}\.npz.*{re.escape(says)}"):
            load_ntire_camera(tmp_path / f"{name}.npz")


@pytest.mark.data
def test_real_cameras_and_spectra(shared_data: Path) -> None:
    cams = load_cameras(shared_data / "cameras")
    assert len(cams) == 26
    assert {"cie_1964", "example_D40", "Canon 5DMarkII"} <= set(cams)
    ones = np.ones((31, 1, 1), dtype=np.float32)
    for cam in cams.values():
        assert cam.matrix.shape == (31, 3)
        assert render_rgb(ones, cam).max() == pytest.approx(1.0, abs=1e-5)
    surfaces = load_spectra_dir(shared_data / "spectra" / "surfaces")
    lights = load_spectra_dir(shared_data / "spectra" / "illuminants")
    assert surfaces.spectra.shape == (2332, 31)  # 2623 measured, less exact repeats
    assert lights.spectra.shape == (104, 31)
    assert np.isfinite(surfaces.spectra).all()
    assert surfaces.spectra.min() >= 0.0
    assert surfaces.spectra.max() <= 1.0
