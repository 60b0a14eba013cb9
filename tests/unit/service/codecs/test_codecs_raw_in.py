"""Raw tensor input: everything a header tells is checked before the bytes are read; the pixels follow
the same rules as decoded files."""

from __future__ import annotations

import numpy as np
import pytest

from service.codecs import DecodeLimits, srgb_to_linear
from service.codecs.raw_in import decode_raw
from service.errors import InvalidInputError, PayloadTooLargeError


def raw(arr: np.ndarray) -> tuple[list[int], str, bytes]:
    a = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
    return list(a.shape), a.dtype.name, a.tobytes()


@pytest.mark.parametrize(("dtype", "scale"), [("uint8", 255), ("uint16", 65535)])
def test_integers_scale_by_their_width(dtype: str, scale: int) -> None:
    arr = np.array([[[0, scale // 2, scale]]], dtype=dtype)
    rgb = decode_raw(*raw(arr))
    assert rgb.dtype == np.float32 and rgb.shape == (1, 1, 3) and rgb.flags.c_contiguous
    np.testing.assert_allclose(rgb[0, 0], [0, (scale // 2) / scale, 1], rtol=1e-6)


def test_floats_pass_and_srgb_is_undone() -> None:
    arr = np.random.default_rng(0).random((4, 5, 3), dtype=np.float32)
    np.testing.assert_array_equal(decode_raw(*raw(arr)), arr)
    np.testing.assert_allclose(decode_raw(*raw(arr), color="srgb"), srgb_to_linear(arr), rtol=1e-6)
    half = decode_raw(*raw(arr.astype(np.float16)))
    np.testing.assert_allclose(half, arr, atol=1e-3)


@pytest.mark.parametrize(
    ("shape", "dtype", "data", "match"),
    [
        ([2, 2, 3], "int32", bytes(48), "dtype 'int32'"),
        ([2, 2, 3], "float64", bytes(96), "dtype 'float64'"),
        ([4, 4], "uint8", bytes(16), r"accepted: \(H, W, 3\)"),
        ([2, 2, 4], "uint8", bytes(16), "4 channels"),
        ([3, 8, 8], "uint8", bytes(192), "channels first"),
        ([2, 2, 3], "uint8", bytes(11), "needs 12 bytes"),
        ([0, 2, 3], "uint8", bytes(1), "at least 1"),
        ([2, 2, 3], "uint8", b"", "needs 12 bytes, got 0"),  # said against the shape
    ],
)
def test_malformed_tensors_are_refused(shape: list[int], dtype: str, data: bytes, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        decode_raw(shape, dtype, data)


def test_values_outside_the_contract_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="NaN"):
        decode_raw(*raw(np.full((2, 2, 3), np.nan, np.float32)))
    with pytest.raises(InvalidInputError, match="infinite"):
        decode_raw(*raw(np.full((2, 2, 3), np.inf, np.float32)))
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        decode_raw(*raw(np.full((2, 2, 3), 2.0, np.float32)))
    with pytest.raises(InvalidInputError, match="color"):
        decode_raw(*raw(np.zeros((2, 2, 3), np.uint8)), color="p3")


def test_limits_apply_before_the_bytes_are_read() -> None:
    limits = DecodeLimits(max_bytes=1 << 20, max_pixels=64, max_side=16)
    with pytest.raises(PayloadTooLargeError):
        decode_raw([9, 9, 3], "uint8", bytes(243), limits=limits)  # 81 pixels
    with pytest.raises(PayloadTooLargeError):
        decode_raw([1, 17, 3], "uint8", bytes(51), limits=limits)  # a side of 17
    with pytest.raises(PayloadTooLargeError):
        decode_raw([2, 2, 3], "uint8", bytes(2 << 20), limits=limits)  # the body
    with pytest.raises(PayloadTooLargeError):
        decode_raw([2**40, 2**40, 3], "uint8", b"", limits=limits)  # a huge shape, no data yet
