"""Property tests: hostile bytes only ever raise the service's 4xx errors; valid arrays round-trip.

CODECS_FUZZ_EXAMPLES raises the example count for a long local run (the default keeps CI fast).
"""

from __future__ import annotations

import io
import os

import imagecodecs
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from service.codecs import DecodeLimits, decode_image, encode_cube, read_cube_tiff
from service.errors import ServiceError

EXAMPLES = int(os.environ.get("CODECS_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMITS = DecodeLimits(max_bytes=1 << 20, max_pixels=1 << 16, max_side=1024)
MAGICS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"II+\x00", b"\x93NUMPY"]


def _seeds() -> list[bytes]:
    """One small valid file per format and flavour, to mutate."""
    rng = np.random.default_rng(0)
    rgb8 = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    out: list[bytes] = []
    for fmt in ("PNG", "JPEG"):
        buf = io.BytesIO()
        Image.fromarray(rgb8).save(buf, fmt)
        out.append(buf.getvalue())
    out.append(bytes(imagecodecs.png_encode(rgb8.astype(np.uint16) * 257)))
    for arr, kwargs in [
        (rgb8, {"photometric": "rgb"}),
        (rgb8.astype(np.uint16), {"photometric": "rgb", "compression": "zlib"}),
        (rgb8 / np.float32(255), {"photometric": "rgb", "tile": (16, 16)}),
    ]:
        buf = io.BytesIO()
        tifffile.imwrite(buf, arr, **kwargs)  # type: ignore[arg-type]
        out.append(buf.getvalue())
    for arr in (rgb8, rgb8 / np.float32(255)):
        buf = io.BytesIO()
        np.save(buf, arr)
        out.append(buf.getvalue())
    return out


SEEDS = _seeds()


def _decode_or_4xx(data: bytes) -> None:
    """A decode either succeeds with the contract's array or raises a client error."""
    error: ServiceError | None = None
    try:
        out = decode_image(data, limits=LIMITS)
    except ServiceError as exc:
        error = exc
    if error is not None:
        assert 400 <= error.http_status < 500, error
        assert error.message
    else:
        assert out.rgb.dtype == np.float32 and out.rgb.ndim == 3 and out.rgb.shape[2] == 3
        assert out.rgb.flags.c_contiguous
        assert float(out.rgb.min()) >= 0.0 and float(out.rgb.max()) <= 1.0


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_are_4xx(data: bytes) -> None:
    _decode_or_4xx(data)


@FUZZ
@given(st.sampled_from(MAGICS), st.binary(max_size=512))
def test_magic_then_garbage_is_4xx(magic: bytes, tail: bytes) -> None:
    _decode_or_4xx(magic + tail)


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=8),
    st.one_of(st.none(), st.integers(1, 1 << 16)),
)
def test_mutated_valid_files_are_4xx_or_decode(
    seed: bytes, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(seed)
    for at, value in edits:
        data[at % len(data)] = value
    _decode_or_4xx(bytes(data[: cut % len(data) if cut else None]))


IMAGES_8 = hnp.arrays(np.uint8, hnp.array_shapes(min_dims=2, max_dims=2, max_side=9).map(lambda s: (*s, 3)))
IMAGES_16 = hnp.arrays(np.uint16, hnp.array_shapes(min_dims=2, max_dims=2, max_side=9).map(lambda s: (*s, 3)))
UNIT_FLOATS = hnp.arrays(
    np.float32,
    hnp.array_shapes(min_dims=2, max_dims=2, max_side=9).map(lambda s: (*s, 3)),
    elements=st.floats(0, 1, width=32),
)


def _encode(fmt: str, arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    if fmt == "png":
        return bytes(imagecodecs.png_encode(arr))
    if fmt == "tiff":
        tifffile.imwrite(buf, arr, photometric="rgb")
    else:
        np.save(buf, arr)
    return buf.getvalue()


@FUZZ
@given(st.one_of(IMAGES_8, IMAGES_16), st.sampled_from(["png", "tiff", "npy"]))
def test_integer_arrays_round_trip(arr: np.ndarray, fmt: str) -> None:
    out = decode_image(_encode(fmt, arr))
    scale = float(np.iinfo(arr.dtype).max)
    np.testing.assert_array_equal(out.rgb, (arr / scale).astype(np.float32))


@FUZZ
@given(UNIT_FLOATS, st.sampled_from(["tiff", "npy"]))
def test_unit_float_arrays_round_trip(arr: np.ndarray, fmt: str) -> None:
    np.testing.assert_array_equal(decode_image(_encode(fmt, arr)).rgb, arr)


@FUZZ
@given(
    hnp.arrays(
        np.float32, hnp.array_shapes(min_dims=3, max_dims=3, max_side=6), elements=st.floats(0, 1, width=32)
    )
)
def test_cubes_round_trip_through_both_formats(cube: np.ndarray) -> None:
    wavelengths = [400.0 + 10 * i for i in range(cube.shape[2])]
    loaded = np.load(io.BytesIO(encode_cube(cube, wavelengths, fmt="npy")), allow_pickle=False)
    np.testing.assert_array_equal(loaded, cube)
    read = read_cube_tiff(encode_cube(cube, wavelengths, fmt="tiff", compression="zlib"))
    np.testing.assert_array_equal(read.cube, cube)
    assert read.wavelengths_nm == pytest.approx(wavelengths)
