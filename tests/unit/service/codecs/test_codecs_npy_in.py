"""`.npy` input: dtype and layout round trips; pickle, dtype, shape, value and header rejections."""

from __future__ import annotations

import io
import pickle
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from service.codecs import DecodeLimits, UnsupportedMediaTypeError, decode_image, npy_in
from service.errors import InvalidInputError, PayloadTooLargeError

Encoder = Callable[..., bytes]


def _header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


@pytest.mark.parametrize("dtype", ["<f2", "<f4", "<f8", ">f4"])
def test_floats_in_unit_range_round_trip(npy: Encoder, dtype: str) -> None:
    arr = np.random.default_rng(0).random((5, 7, 3)).astype(dtype)
    out = decode_image(npy(arr))
    assert (out.source_format, out.bit_depth) == ("npy", np.dtype(dtype).itemsize * 8)
    assert out.rgb.flags.c_contiguous and out.rgb.flags.writeable and out.rgb.dtype == np.float32
    np.testing.assert_array_equal(out.rgb, arr.astype(np.float32))


@pytest.mark.parametrize(("dtype", "scale"), [("<u1", 255.0), ("<u2", 65535.0), (">u2", 65535.0)])
def test_integers_scale_by_bit_depth(npy: Encoder, dtype: str, scale: float) -> None:
    arr = np.random.default_rng(1).integers(0, int(scale) + 1, (4, 6, 3)).astype(dtype)
    out = decode_image(npy(arr))
    np.testing.assert_array_equal(out.rgb, (arr / scale).astype(np.float32))


def test_fortran_order_is_read_in_the_right_order(npy: Encoder) -> None:
    arr = np.random.default_rng(2).random((4, 5, 3)).astype(np.float32)
    out = decode_image(npy(np.asfortranarray(arr)))
    np.testing.assert_array_equal(out.rgb, arr)
    assert out.rgb.flags.c_contiguous


def test_object_arrays_are_never_unpickled(npy: Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    data = npy(np.empty((2, 2, 3), dtype=object), allow_pickle=True)
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("pickle.load was called"))
    with pytest.raises(InvalidInputError, match=r"object .*never loaded"):
        decode_image(data)


def test_a_plain_pickle_is_unsupported_media() -> None:
    data = pickle.dumps(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(UnsupportedMediaTypeError, match="pickle"):
        decode_image(data)


@pytest.mark.parametrize(
    "arr",
    [
        np.zeros((2, 2, 3), np.int32),
        np.zeros((2, 2, 3), bool),
        np.zeros((2, 2, 3), np.complex64),
        np.zeros((2, 2, 3), "U1"),
        np.zeros((2, 2), [("r", "<f4"), ("g", "<f4"), ("b", "<f4")]),
    ],
    ids=["int32", "bool", "complex", "str", "structured"],
)
def test_other_dtypes_are_rejected(npy: Encoder, arr: np.ndarray) -> None:
    with pytest.raises(InvalidInputError, match="accepted: uint8, uint16, float16, float32 or float64"):
        decode_image(npy(arr))


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((4, 5), r"shape \(4, 5\); accepted: \(H, W, 3\) \(greyscale"),
        ((4, 5, 4), "4 channels"),
        ((4, 5, 1), "1 channel"),
        ((3, 4, 5), "channels first"),
        ((2, 4, 5, 3), r"accepted: \(H, W, 3\)"),
        ((0, 0, 3), "at least 1"),
    ],
)
def test_wrong_shapes_are_rejected(npy: Encoder, shape: tuple[int, ...], expected: str) -> None:
    with pytest.raises(InvalidInputError, match=expected):
        decode_image(npy(np.zeros(shape, np.float32)))


@pytest.mark.parametrize(
    ("value", "expected"), [(np.nan, "NaN"), (np.inf, "infinite"), (-np.inf, "infinite")]
)
def test_non_finite_values_are_rejected(npy: Encoder, value: float, expected: str) -> None:
    arr = np.full((3, 3, 3), 0.5, np.float32)
    arr[2, 1, 0] = value
    with pytest.raises(InvalidInputError, match=expected):
        decode_image(npy(arr))


@pytest.mark.parametrize("value", [1.5, -0.1, 255.0])
def test_out_of_range_floats_are_rejected_not_rescaled(npy: Encoder, value: float) -> None:
    arr = np.full((3, 3, 3), 0.5, np.float32)
    arr[0, 0, 0] = value
    with pytest.raises(InvalidInputError, match=r"accepted: linear camera RGB in \[0, 1\]"):
        decode_image(npy(arr))


def test_huge_header_is_rejected_before_parsing() -> None:
    body = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 3), }"
    body += b" " * (60000 - len(body) - 1) + b"\n"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body + bytes(12)
    with pytest.raises(
        InvalidInputError, match=f"header of 60000 bytes exceeds the {npy_in.MAX_HEADER_BYTES}"
    ):
        decode_image(data)


def test_declared_huge_v2_header_is_rejected_without_reading_it() -> None:
    with pytest.raises(InvalidInputError, match="header of 4000000000 bytes"):
        decode_image(b"\x93NUMPY\x02\x00" + struct.pack("<I", 4_000_000_000) + b"{")


@pytest.mark.parametrize("version", [b"\x03\x00", b"\x01\x01", b"\x09\x00"])
def test_other_format_versions_are_rejected(version: bytes) -> None:
    with pytest.raises(InvalidInputError, match="format version"):
        decode_image(b"\x93NUMPY" + version + bytes(64))


def test_garbled_header_is_a_422() -> None:
    body = b"{'descr': __import__('os'), 'shape': (1, 1, 3)}".ljust(63) + b"\n"
    with pytest.raises(InvalidInputError, match="unreadable header") as err:
        decode_image(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body)
    assert "0x" not in err.value.message  # numpy's words, not the server's memory addresses


def test_giant_shape_is_a_413_without_any_data() -> None:
    with pytest.raises(PayloadTooLargeError, match="100000x1"):
        decode_image(_header((1, 100_000, 3)))


def test_negative_shape_is_a_422() -> None:
    with pytest.raises(InvalidInputError):
        decode_image(_header((-1, 5, 3)) + bytes(60))


@pytest.mark.parametrize(("extra", "expected"), [(-4, "truncated"), (4, "followed by extra bytes")])
def test_data_length_must_match_the_header(npy: Encoder, extra: int, expected: str) -> None:
    data = npy(np.zeros((4, 4, 3), np.float32))
    data = data[:extra] if extra < 0 else data + bytes(extra)
    with pytest.raises(InvalidInputError, match=expected):
        decode_image(data)


def test_body_limit_applies(npy: Encoder) -> None:
    with pytest.raises(PayloadTooLargeError, match="exceeds the limit of 100 bytes"):
        decode_image(npy(np.zeros((4, 4, 3), np.float32)), limits=DecodeLimits(max_bytes=100))


def test_header_parses_never_overlap_across_threads(npy: Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    """numpy's header parse (ast.literal_eval) is not thread-safe on CPython 3.11 (npy_in.py says
    why); decodes run in worker threads, so the parse must be serialised."""
    real = npy_in._HEADER_READERS[1]
    inside, overlaps = [0], [0]
    guard = threading.Lock()

    def watched(stream: io.BytesIO, max_header_size: int) -> object:
        with guard:
            inside[0] += 1
            overlaps[0] += inside[0] > 1
        time.sleep(0.002)  # long enough for other threads to arrive
        with guard:
            inside[0] -= 1
        return real(stream, max_header_size=max_header_size)

    monkeypatch.setitem(npy_in._HEADER_READERS, 1, watched)
    body = npy(np.zeros((4, 4, 3), np.float32))
    with ThreadPoolExecutor(8) as pool:
        shapes = list(pool.map(lambda _: decode_image(body).rgb.shape, range(64)))
    assert shapes == [(4, 4, 3)] * 64 and overlaps[0] == 0
