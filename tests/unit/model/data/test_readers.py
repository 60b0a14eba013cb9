"""Readers on tiny fixtures written here in each real format, bad files, and the shared data when present."""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import tifffile
from PIL import Image

from model.config import CAVE_WAVELENGTHS
from model.data.readers import (
    Cube,
    CubeReadError,
    list_cave_scenes,
    parse_envi_header,
    read_arad_mat,
    read_cave,
    read_cube,
    read_envi,
    read_npy,
    read_rgb_image,
    read_tiff,
)

RNG = np.random.default_rng(0)


def _write_cave(root: Path, scene: str, data: np.ndarray, nested: bool = False) -> Path:
    """CAVE band PNGs for `data` (31, H, W) of uint8/uint16 (or (31, H, W, C) uint8 for RGB(A) bands)."""
    scene_dir = root / f"{scene}_ms"
    band_dir = scene_dir / f"{scene}_ms" if nested else scene_dir
    band_dir.mkdir(parents=True)
    for n, band in enumerate(data, start=1):
        Image.fromarray(band).save(band_dir / f"{scene}_ms_{n:02d}.png")
    return scene_dir


def _cave_data(h: int = 6, w: int = 5) -> np.ndarray:
    return RNG.integers(0, 65536, size=(31, h, w), dtype=np.uint16)


@pytest.mark.parametrize("nested", [False, True])
def test_cave_reads_both_layouts(tmp_path: Path, nested: bool) -> None:
    data = _cave_data()
    cube = read_cave(_write_cave(tmp_path, "toy", data, nested))
    assert cube.shape == (31, 6, 5)
    assert cube.data.dtype == np.float32
    np.testing.assert_allclose(cube.data, data / 65535.0, rtol=1e-6)
    assert cube.wavelengths_nm == CAVE_WAVELENGTHS
    assert cube.name == "toy"


def test_cave_full_size_scene(tmp_path: Path) -> None:
    data = np.full((31, 512, 512), 1000, dtype=np.uint16)
    assert read_cube(_write_cave(tmp_path, "big", data)).shape == (31, 512, 512)


def test_cave_8bit_and_rgba_bands(tmp_path: Path) -> None:
    grey = RNG.integers(0, 256, size=(31, 4, 4), dtype=np.uint8)
    np.testing.assert_allclose(read_cave(_write_cave(tmp_path, "grey", grey)).data, grey / 255.0, rtol=1e-6)
    rgba = RNG.integers(0, 256, size=(31, 4, 4, 4), dtype=np.uint8)
    cube = read_cave(_write_cave(tmp_path, "rgba", rgba, nested=True))
    np.testing.assert_allclose(cube.data, rgba[..., 0] / 255.0, rtol=1e-6)


def test_list_cave_scenes_sorted_mixed_layouts(tmp_path: Path) -> None:
    small = np.zeros((31, 2, 2), dtype=np.uint16)
    _write_cave(tmp_path, "zebra", small)
    _write_cave(tmp_path, "apple", small, nested=True)
    (tmp_path / "notes").mkdir()
    assert [p.name for p in list_cave_scenes(tmp_path)] == ["apple_ms", "zebra_ms"]


def test_cave_missing_band(tmp_path: Path) -> None:
    scene = _write_cave(tmp_path, "toy", _cave_data())
    (scene / "toy_ms_17.png").unlink()
    with pytest.raises(CubeReadError, match=r"toy_ms.*missing bands \[17\]"):
        read_cave(scene)


def test_cave_unreadable_png_names_file(tmp_path: Path) -> None:
    scene = _write_cave(tmp_path, "toy", _cave_data())
    (scene / "toy_ms_05.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(CubeReadError, match=r"toy_ms_05\.png"):
        read_cave(scene)


def test_cave_band_of_other_shape(tmp_path: Path) -> None:
    scene = _write_cave(tmp_path, "toy", _cave_data())
    Image.fromarray(np.zeros((3, 3), dtype=np.uint16)).save(scene / "toy_ms_09.png")
    with pytest.raises(CubeReadError, match=r"toy_ms_09\.png"):
        read_cave(scene)


def test_cave_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(CubeReadError, match="empty_ms"):
        read_cave(tmp_path / "empty_ms")


# --- ARAD -------------------------------------------------------------------------------------------


def _write_arad(path: Path, cube_bhw: np.ndarray, bands: np.ndarray | None) -> Path:
    """MATLAB v7.3 writes an (H, W, 31) array as HDF5 (31, W, H)."""
    with h5py.File(path, "w") as f:
        f["cube"] = cube_bhw.transpose(0, 2, 1)
        if bands is not None:
            f["bands"] = bands.reshape(1, -1)
    return path


def test_arad_mat_hdf5_transposes_to_bands_h_w(tmp_path: Path) -> None:
    data = RNG.random((31, 7, 4), dtype=np.float32)
    bands = np.arange(400.0, 701.0, 10.0)
    cube = read_cube(_write_arad(tmp_path / "ARAD_1K_0001.mat", data, bands))
    assert cube.shape == (31, 7, 4)
    np.testing.assert_array_equal(cube.data, data)
    assert cube.wavelengths_nm == tuple(bands)
    assert cube.name == "ARAD_1K_0001"


def test_arad_mat_without_bands_and_v5(tmp_path: Path) -> None:
    data = RNG.random((31, 3, 5), dtype=np.float32) * 1.2
    cube = read_arad_mat(_write_arad(tmp_path / "a.mat", data, None))
    assert cube.wavelengths_nm == CAVE_WAVELENGTHS
    assert cube.data.max() <= 1.0
    scipy.io.savemat(tmp_path / "v5.mat", {"cube": data.transpose(1, 2, 0)})
    np.testing.assert_allclose(read_arad_mat(tmp_path / "v5.mat").data, np.clip(data, 0, 1))


def test_arad_mat_without_cube_key(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "bad.mat", "w") as f:
        f["rad"] = np.zeros((31, 2, 2))
    with pytest.raises(CubeReadError, match=r"bad\.mat"):
        read_arad_mat(tmp_path / "bad.mat")


def test_rgb_jpeg(tmp_path: Path) -> None:
    rgb = np.full((6, 8, 3), (200, 100, 50), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "ARAD_1K_0001.jpg", quality=95)
    out = read_rgb_image(tmp_path / "ARAD_1K_0001.jpg")
    assert out.shape == (6, 8, 3)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, rgb / 255.0, atol=3 / 255)


# --- ENVI -------------------------------------------------------------------------------------------

_DTYPES = {1: np.uint8, 2: np.int16, 3: np.int32, 4: np.float32, 5: np.float64, 12: np.uint16}
_LAYOUT = {"bsq": (0, 1, 2), "bil": (1, 0, 2), "bip": (1, 2, 0)}


def _write_envi(
    binary: Path,
    data: np.ndarray,
    code: int,
    interleave: str = "bsq",
    big_endian: bool = False,
    wavelengths: list[float] | None = None,
    extra: str = "",
    header: Path | None = None,
) -> Path:
    bands, lines, samples = data.shape
    wl = wavelengths if wavelengths is not None else [400.0 + 20 * i for i in range(bands)]
    dtype = np.dtype(_DTYPES[code]).newbyteorder(">" if big_endian else "<")
    data.transpose(_LAYOUT[interleave]).astype(dtype).tofile(binary)
    text = (
        f"ENVI\ndescription = {{\n  toy [today]}}\nsamples = {samples}\nlines   = {lines}\n"
        f"bands   = {bands}\nheader offset = 0\nfile type = ENVI Standard\ndata type = {code}\n"
        f"interleave = {interleave}\nbyte order = {int(big_endian)}\n"
        f"wavelength = {{\n {', '.join(f'{w:.3f}' for w in wl)}}}\n{extra}"
    )
    header = header or Path(f"{binary}.hdr")
    header.write_text(text)
    return header


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("code", sorted(_DTYPES))
def test_envi_interleaves_and_types(tmp_path: Path, interleave: str, code: int) -> None:
    data = RNG.integers(0, 100, size=(5, 4, 3)).astype(_DTYPES[code])
    data[0, 0, 0] = 100
    header = _write_envi(tmp_path / "x.img", data, code, interleave, big_endian=code % 2 == 0)
    cube = read_envi(header)
    assert cube.shape == (5, 4, 3)
    np.testing.assert_allclose(cube.data, data / 100.0, rtol=1e-6)  # integer or > 1: divided by the max
    assert cube.wavelengths_nm == (400.0, 420.0, 440.0, 460.0, 480.0)


def test_envi_float_in_unit_range_kept(tmp_path: Path) -> None:
    data = RNG.random((3, 2, 2)).astype(np.float32) * 0.5
    np.testing.assert_allclose(read_envi(_write_envi(tmp_path / "f.img", data, 4)).data, data)


def test_envi_x_hdr_naming_scale_factor_and_unsorted_wavelengths(tmp_path: Path) -> None:
    data = np.stack([np.full((2, 3), v, dtype=np.int16) for v in (1000, 2000, 3000, -5)])
    wl = [400.0, 500.0, 450.0, 600.0]
    header = tmp_path / "scene.hdr"
    _write_envi(
        tmp_path / "scene.img",
        data,
        2,
        "bil",
        wavelengths=wl,
        header=header,
        extra="reflectance scale factor = 10000.0\n",
    )
    for path in (header, tmp_path / "scene.img"):
        cube = read_cube(path)
        assert cube.wavelengths_nm == (400.0, 450.0, 500.0, 600.0)
        np.testing.assert_allclose(cube.data[:, 0, 0], [0.1, 0.3, 0.2, 0.0])
        assert cube.name == "scene"


def test_envi_bbl_and_micrometres(tmp_path: Path) -> None:
    data = RNG.random((3, 2, 2)).astype(np.float32)
    extra = "wavelength units = Micrometers\nbbl = {1, 0, 1}\n"
    header = _write_envi(tmp_path / "u.img", data, 4, wavelengths=[0.4, 0.5, 0.6], extra=extra)
    cube = read_envi(header)
    assert cube.wavelengths_nm == pytest.approx((400.0, 600.0))
    np.testing.assert_allclose(cube.data, data[[0, 2]])


def test_envi_truncated_binary(tmp_path: Path) -> None:
    header = _write_envi(tmp_path / "t.img", np.ones((4, 3, 3), dtype=np.int16), 2)
    binary = tmp_path / "t.img"
    binary.write_bytes(binary.read_bytes()[:-7])
    with pytest.raises(CubeReadError, match=r"t\.img.*header implies"):
        read_envi(header)


def test_envi_bad_headers(tmp_path: Path) -> None:
    header = _write_envi(tmp_path / "w.img", np.ones((4, 3, 3), dtype=np.int16), 2, wavelengths=[1.0, 2.0])
    with pytest.raises(CubeReadError, match=r"w\.img\.hdr.*2 wavelengths"):
        read_envi(header)
    header.write_text("not a header\nsamples = 3\n")
    with pytest.raises(CubeReadError, match="not an ENVI header"):
        read_envi(header)
    (tmp_path / "lonely.img").write_bytes(b"\0" * 8)
    with pytest.raises(CubeReadError, match="lonely"):
        read_envi(tmp_path / "lonely.img")


def test_parse_envi_header_multiline_braces() -> None:
    text = "ENVI\ndescription = {\n  a [b], c}\nbands = 2\nwavelength = {\n 1.0,\n 2.0}\n"
    fields = parse_envi_header(text)
    assert fields["bands"] == "2"
    assert fields["wavelength"].split() == ["1.0,", "2.0"]
    with pytest.raises(ValueError, match="unterminated"):
        parse_envi_header("ENVI\nwavelength = {1, 2\n")


# --- TIFF / NPY -------------------------------------------------------------------------------------


def test_tiff_multipage_with_sidecar(tmp_path: Path) -> None:
    data = RNG.integers(0, 10000, size=(6, 4, 5), dtype=np.int16)
    tifffile.imwrite(tmp_path / "patch.tif", data)
    (tmp_path / "patch.wavelengths.txt").write_text("420, 430 440\n450 460 470")
    cube = read_cube(tmp_path / "patch.tif")
    assert cube.shape == (6, 4, 5)
    assert cube.wavelengths_nm == (420.0, 430.0, 440.0, 450.0, 460.0, 470.0)
    np.testing.assert_allclose(cube.data, data / data.max(), rtol=1e-6)
    scaled = read_tiff(tmp_path / "patch.tif", wavelengths_nm=range(6), scale=10000.0)
    np.testing.assert_allclose(scaled.data, data / 10000.0, rtol=1e-6)


def test_npy_defaults_wavelengths_and_keeps_floats(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = RNG.random((31, 3, 3)).astype(np.float32)
    np.save(tmp_path / "c.npy", data)
    with caplog.at_level(logging.WARNING):
        cube = read_npy(tmp_path / "c.npy")
    assert "wavelengths unknown" in caplog.text
    assert cube.wavelengths_nm == pytest.approx(CAVE_WAVELENGTHS)
    np.testing.assert_array_equal(cube.data, data)


def test_array_cubes_bad_shapes(tmp_path: Path) -> None:
    np.save(tmp_path / "flat.npy", np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(CubeReadError, match=r"flat\.npy.*\(bands, H, W\)"):
        read_cube(tmp_path / "flat.npy")
    np.save(tmp_path / "c.npy", np.zeros((3, 4, 4), dtype=np.float32))
    with pytest.raises(CubeReadError, match="2 wavelengths for 3 bands"):
        read_npy(tmp_path / "c.npy", wavelengths_nm=[1.0, 2.0])
    (tmp_path / "broken.tif").write_bytes(b"II*\0garbage")
    with pytest.raises(CubeReadError, match=r"broken\.tif"):
        read_cube(tmp_path / "broken.tif")


def test_read_cube_unknown_and_missing(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(CubeReadError, match=r"x\.csv"):
        read_cube(tmp_path / "x.csv")
    with pytest.raises(CubeReadError, match="no such file"):
        read_cube(tmp_path / "nope.mat")


def test_cube_validates() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        Cube(np.zeros((2, 1, 1), dtype=np.float32), (500.0, 400.0), "x")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Cube(np.full((1, 1, 1), 2.0, dtype=np.float32), (500.0,), "x")


# --- the shared data ----------------------------------------------------------------------------------


@pytest.mark.data
def test_real_cave_scene(shared_data: Path) -> None:
    scenes = list_cave_scenes(shared_data / "cave")
    assert len(scenes) == 22
    cube = read_cube(scenes[0])
    assert cube.shape == (31, 256, 256)
    assert cube.data.min() >= 0.0
    assert 0.5 < cube.data.max() <= 1.0


@pytest.mark.data
@pytest.mark.parametrize(
    ("name", "shape", "unsorted"),
    [("samson_1.img", (156, 95, 95), False), ("jasperRidge2_R198.img", (198, 100, 100), True)],
)
def test_real_remote_cubes(
    shared_data: Path, caplog: pytest.LogCaptureFixture, name: str, shape: tuple[int, ...], unsorted: bool
) -> None:
    with caplog.at_level(logging.INFO):
        cube = read_cube(shared_data / "remote" / name)
    assert cube.shape == shape
    assert np.all(np.diff(cube.wavelengths_nm) > 0)
    assert ("not monotonic" in caplog.text) == unsorted
    assert cube.data.min() >= 0.0
    assert 0.1 < cube.data.max() <= 1.0


def test_cave_palette_and_one_bit_bands_read_as_grey_levels(tmp_path: Path) -> None:
    """A palette PNG's array holds palette indices and a 1-bit one booleans: read as grey levels."""
    index = RNG.integers(0, 256, size=(4, 4), dtype=np.uint8)
    inverted = [v for i in range(256) for v in (255 - i,) * 3]  # index i shows grey 255 - i
    bits = RNG.random((4, 4)) > 0.5
    for kind in ("palette", "bits"):
        scene = tmp_path / f"{kind}_ms"
        scene.mkdir()
        for n in range(1, 32):
            if kind == "palette":
                img = Image.fromarray(index, "P")
                img.putpalette(inverted)
            else:
                img = Image.fromarray(bits)
            img.save(scene / f"{kind}_ms_{n:02d}.png")
    palette = read_cave(tmp_path / "palette_ms").data
    np.testing.assert_allclose(palette[4], (255 - index) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(read_cave(tmp_path / "bits_ms").data[0], bits.astype(np.float32))


def test_envi_units_do_not_scale_placeholder_wavelengths(tmp_path: Path) -> None:
    data = RNG.random((3, 2, 2)).astype(np.float32)
    header = _write_envi(tmp_path / "p.img", data, 4)
    text = header.read_text()
    header.write_text(text[: text.index("wavelength = {")] + "wavelength units = Micrometers\n")  # no list
    assert read_envi(header).wavelengths_nm == pytest.approx((400.0, 550.0, 700.0))


def test_arad_mat_that_is_not_a_cube_says_so(tmp_path: Path) -> None:
    path = tmp_path / "flat.mat"
    scipy.io.savemat(path, {"cube": np.zeros((4, 5), np.float32)})
    with pytest.raises(CubeReadError, match="must be 3-D"):
        read_arad_mat(path)
