"""TIFF input: 8/12/16-bit and float RGB round trips (contiguous, planar, compressed); rejections."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import tifffile

from service.codecs import DecodeLimits, decode_image
from service.errors import InvalidInputError, PayloadTooLargeError

Encoder = Callable[..., bytes]


@pytest.mark.parametrize("planar", [False, True])
@pytest.mark.parametrize("compression", [None, "zlib", "lzw", "zstd"])
@pytest.mark.parametrize("bits", [8, 16])
def test_integer_rgb_round_trips(
    tiff: Encoder, rgb8: np.ndarray, rgb16: np.ndarray, planar: bool, compression: str | None, bits: int
) -> None:
    arr = rgb8 if bits == 8 else rgb16
    stored = np.moveaxis(arr, -1, 0) if planar else arr
    data = tiff(
        stored, photometric="rgb", planarconfig="separate" if planar else "contig", compression=compression
    )
    out = decode_image(data)
    assert (out.source_format, out.bit_depth) == ("tiff", bits)
    assert out.rgb.flags.c_contiguous and out.rgb.dtype == np.float32
    np.testing.assert_array_equal(out.rgb, (arr / float(2**bits - 1)).astype(np.float32))


def test_12bit_samples_scale_by_4095(tiff: Encoder) -> None:
    arr = np.random.default_rng(2).integers(0, 4096, (5, 7, 3), dtype=np.uint16)
    out = decode_image(tiff(arr, photometric="rgb", bitspersample=12))
    assert out.bit_depth == 12
    np.testing.assert_array_equal(out.rgb, (arr / 4095.0).astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_rgb_in_unit_range_is_used_as_is(tiff: Encoder, dtype: type) -> None:
    arr: np.ndarray = np.random.default_rng(3).random((6, 9, 3)).astype(dtype)
    out = decode_image(tiff(arr, photometric="rgb"))
    assert out.bit_depth == np.dtype(dtype).itemsize * 8
    np.testing.assert_array_equal(out.rgb, arr.astype(np.float32))


def test_float_within_tolerance_is_clipped(tiff: Encoder) -> None:
    arr = np.full((2, 2, 3), 0.5, np.float32)
    arr[0, 0] = [1.0005, -0.0005, 1.0]
    out = decode_image(tiff(arr, photometric="rgb"))
    np.testing.assert_array_equal(out.rgb[0, 0], [1.0, 0.0, 1.0])


@pytest.mark.parametrize(
    ("value", "expected"),
    [(np.nan, "NaN"), (np.inf, "infinite"), (-0.5, r"\[-0.5"), (255.0, "255.*accepted: linear camera RGB")],
)
def test_float_outside_contract_is_rejected(tiff: Encoder, value: float, expected: str) -> None:
    arr = np.full((3, 4, 3), 0.25, np.float32)
    arr[1, 2, 0] = value
    with pytest.raises(InvalidInputError, match=expected):
        decode_image(tiff(arr, photometric="rgb"))


def test_greyscale_is_rejected(tiff: Encoder, rgb8: np.ndarray) -> None:
    with pytest.raises(InvalidInputError, match=r"1 channel \(greyscale\)"):
        decode_image(tiff(np.ascontiguousarray(rgb8[..., 0])))


def test_rgba_is_rejected_not_dropped(tiff: Encoder, rgb8: np.ndarray) -> None:
    rgba = np.concatenate([rgb8, rgb8[..., :1]], axis=-1)
    with pytest.raises(InvalidInputError, match=r"4 channels .*extra samples"):
        decode_image(tiff(rgba, photometric="rgb", extrasamples=["unassalpha"]))


def test_two_channels_are_rejected(tiff: Encoder, rgb8: np.ndarray) -> None:
    with pytest.raises(InvalidInputError, match="2 channels"):
        decode_image(
            tiff(np.ascontiguousarray(rgb8[..., :2]), photometric="minisblack", planarconfig="contig")
        )


def test_multi_page_is_rejected(tiff: Encoder, rgb8: np.ndarray) -> None:
    with pytest.raises(InvalidInputError, match="2 pages"):
        decode_image(tiff(np.stack([rgb8, rgb8]), photometric="rgb"))


@pytest.mark.parametrize("dtype", [np.int16, np.uint32, np.int8])
def test_unsupported_sample_types_are_rejected(tiff: Encoder, dtype: type) -> None:
    with pytest.raises(InvalidInputError, match="accepted: uint8, uint16"):
        decode_image(tiff(np.ones((4, 4, 3), dtype), photometric="rgb"))


@pytest.mark.parametrize("compression", ["jpeg", "webp"])
def test_image_codecs_inside_tiff_are_rejected(tiff: Encoder, rgb8: np.ndarray, compression: str) -> None:
    with pytest.raises(InvalidInputError, match=f"compression {compression.upper()} is not accepted"):
        decode_image(tiff(rgb8, photometric="rgb", compression=compression))


def test_packbits_is_accepted(tiff: Encoder, rgb8: np.ndarray) -> None:
    out = decode_image(tiff(rgb8, photometric="rgb", compression="packbits"))
    np.testing.assert_array_equal(out.rgb, (rgb8 / 255.0).astype(np.float32))


@pytest.mark.parametrize("keep", [0.3, 0.8, 0.99])
def test_truncated_tiff_is_a_422(tiff: Encoder, rgb16: np.ndarray, keep: float) -> None:
    data = tiff(rgb16, photometric="rgb")
    with pytest.raises(InvalidInputError, match="undecodable TIFF"):
        decode_image(data[: int(len(data) * keep)])


def test_size_is_checked_before_decoding(
    tiff: Encoder, rgb8: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_decoding(*_: object, **__: object) -> None:
        raise AssertionError("pixel data was decoded before the header checks")

    data = tiff(np.zeros((1, 2000, 3), np.uint8), photometric="rgb", compression="zlib")
    monkeypatch.setattr(tifffile.TiffPage, "asarray", no_decoding)
    with pytest.raises(PayloadTooLargeError, match="2000x1"):
        decode_image(data, limits=DecodeLimits(max_side=1000))
