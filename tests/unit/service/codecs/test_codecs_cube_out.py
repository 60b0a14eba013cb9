"""Cube encoding: NPY loads with np.load(allow_pickle=False); OME-TIFF reads back with tifffile."""

from __future__ import annotations

import io
import uuid
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import tifffile

from service.codecs import (
    Compression,
    encode_cube,
    encode_cube_chunks,
    read_cube_tiff,
    select_bands,
)
from service.errors import InvalidInputError

WAVELENGTHS = tuple(400.0 + 10.0 * i for i in range(31))
OME = {"ome": "http://www.openmicroscopy.org/Schemas/OME/2016-06"}


@pytest.fixture(scope="module")
def cube() -> np.ndarray:
    return np.random.default_rng(0).random((9, 13, 31), dtype=np.float32)


def test_npy_float32_is_the_array_itself_without_a_copy(cube: np.ndarray) -> None:
    encoded = encode_cube_chunks(cube, WAVELENGTHS, fmt="npy")
    assert (encoded.media_type, encoded.extension) == ("application/x-npy", ".npy")
    header, body = encoded.chunks
    assert isinstance(body, memoryview) and np.shares_memory(np.frombuffer(body, np.float32), cube)
    data = encoded.tobytes()
    assert encoded.nbytes == len(data) == len(header) + cube.nbytes
    loaded = np.load(io.BytesIO(data), allow_pickle=False)
    assert loaded.dtype == np.dtype("<f4") and loaded.shape == (9, 13, 31)
    np.testing.assert_array_equal(loaded, cube)


def test_npy_float16(cube: np.ndarray) -> None:
    loaded = np.load(
        io.BytesIO(encode_cube(cube, WAVELENGTHS, fmt="npy", dtype="float16")), allow_pickle=False
    )
    assert loaded.dtype == np.dtype("<f2")
    np.testing.assert_allclose(loaded, cube, atol=1e-3)


def test_npy_of_a_band_selection_view(cube: np.ndarray) -> None:
    sub, wl = select_bands(cube, WAVELENGTHS, 500, 600)
    loaded = np.load(io.BytesIO(encode_cube(sub, wl, fmt="npy")), allow_pickle=False)
    np.testing.assert_array_equal(loaded, cube[:, :, 10:21])


@pytest.mark.parametrize(
    ("compression", "tag"),
    [
        (None, tifffile.COMPRESSION.NONE),
        ("zlib", tifffile.COMPRESSION.ADOBE_DEFLATE),
        ("zstd", tifffile.COMPRESSION.ZSTD),
        ("lzw", tifffile.COMPRESSION.LZW),
    ],
)
def test_tiff_is_ome_cyx_with_wavelengths(
    cube: np.ndarray, compression: Compression | None, tag: tifffile.COMPRESSION
) -> None:
    encoded = encode_cube_chunks(
        cube, WAVELENGTHS, fmt="tiff", compression=compression, metadata={"model_version": "v1 <&>"}
    )
    assert (encoded.media_type, encoded.extension) == ("image/tiff", ".ome.tif")
    with tifffile.TiffFile(io.BytesIO(encoded.tobytes())) as tif:
        assert tif.is_ome
        series = tif.series[0]
        assert (series.axes, series.shape, series.dtype) == ("CYX", (31, 9, 13), np.float32)
        assert tif.pages.first.compression == tag
        np.testing.assert_array_equal(series.asarray(), np.moveaxis(cube, -1, 0))
        root = ET.fromstring(tif.ome_metadata or "")
    channels = root.findall(".//ome:Pixels/ome:Channel", OME)
    assert [float(c.attrib["EmissionWavelength"]) for c in channels] == list(WAVELENGTHS)
    assert {c.attrib["EmissionWavelengthUnit"] for c in channels} == {"nm"}
    assert channels[5].attrib["Name"] == "450 nm"
    pairs = {m.attrib["K"]: m.text for m in root.findall(".//ome:MapAnnotation/ome:Value/ome:M", OME)}
    assert pairs["model_version"] == "v1 <&>"
    assert pairs["wavelength_nm"] == ",".join(f"{w:g}" for w in WAVELENGTHS)


def test_tiff_uuid_does_not_embed_the_host(cube: np.ndarray) -> None:
    with tifffile.TiffFile(io.BytesIO(encode_cube(cube, WAVELENGTHS, fmt="tiff"))) as tif:
        root = ET.fromstring(tif.ome_metadata or "")
    assert uuid.UUID(root.attrib["UUID"].removeprefix("urn:uuid:")).version == 4


def test_single_band_tiff_reads_back(cube: np.ndarray) -> None:
    sub, wl = select_bands(cube, WAVELENGTHS, 550, 550)
    read = read_cube_tiff(encode_cube(sub, wl, fmt="tiff", metadata={"k": "v"}))
    assert read.wavelengths_nm == (550.0,) and read.metadata["k"] == "v"
    np.testing.assert_array_equal(read.cube, cube[:, :, 15:16])


def test_read_cube_tiff_refuses_a_plain_tiff() -> None:
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="OME"):
        read_cube_tiff(buf.getvalue())


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"fmt": "tiff", "dtype": "float16"}, "format=npy only"),
        ({"fmt": "png"}, "unknown output format"),
        ({"fmt": "npy", "dtype": "bfloat16"}, "unknown output dtype"),
        ({"fmt": "tiff", "compression": "jpeg"}, "accepted: zlib, zstd, lzw"),
        ({"fmt": "npy", "compression": "zlib"}, "none with format=npy"),
    ],
)
def test_bad_client_options_are_422(cube: np.ndarray, options: dict[str, str], expected: str) -> None:
    with pytest.raises(InvalidInputError, match=expected):
        encode_cube(cube, WAVELENGTHS, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("shape", "wavelengths"),
    [((4, 4, 31), WAVELENGTHS[:30]), ((4, 31), WAVELENGTHS), ((0, 4, 31), WAVELENGTHS)],
)
def test_malformed_cubes_are_server_bugs(shape: tuple[int, ...], wavelengths: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match=r"wavelengths|cube must be"):
        encode_cube(np.zeros(shape, np.float32), wavelengths, fmt="npy")


def test_wavelengths_must_be_positive() -> None:
    with pytest.raises(ValueError, match="finite and positive"):
        encode_cube(np.zeros((2, 2, 2), np.float32), [500.0, float("nan")], fmt="tiff")
