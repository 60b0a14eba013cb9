"""JPEG input: 8-bit RGB round trip, the sRGB option, and channel, size and truncation rejections."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from service.codecs import DecodeLimits, decode_image, srgb_to_linear
from service.errors import InvalidInputError, PayloadTooLargeError

Encoder = Callable[..., bytes]


@pytest.fixture(scope="module")
def smooth() -> np.ndarray:
    """A gradient: JPEG keeps it within a few code values."""
    y, x = np.mgrid[0:32, 0:48]
    return np.stack([x * 5, y * 7, (x + y) * 3], axis=-1).astype(np.uint8)


def _with_size(data: bytes, width: int, height: int) -> bytes:
    """The same JPEG with its SOF0 frame header declaring another size."""
    at = data.index(b"\xff\xc0") + 5  # marker, length (2), precision (1)
    return data[:at] + struct.pack(">HH", height, width) + data[at + 4 :]


def test_rgb_jpeg_decodes_as_pillow_does(jpeg: Encoder, smooth: np.ndarray) -> None:
    data = jpeg(smooth)
    out = decode_image(data)
    assert (out.source_format, out.bit_depth, out.rgb.shape) == ("jpeg", 8, (32, 48, 3))
    np.testing.assert_array_equal(
        out.rgb, (np.asarray(Image.open(io.BytesIO(data))) / 255.0).astype(np.float32)
    )
    np.testing.assert_allclose(out.rgb, smooth / 255.0, atol=6 / 255)


def test_srgb_option_applies_the_inverse_transfer_function(jpeg: Encoder, smooth: np.ndarray) -> None:
    data = jpeg(smooth)
    linear, srgb = decode_image(data), decode_image(data, color="srgb")
    assert srgb.color == "srgb"
    np.testing.assert_allclose(srgb.rgb, srgb_to_linear(linear.rgb), rtol=1e-5, atol=1e-7)
    assert srgb.rgb.mean() < linear.rgb.mean()


def test_greyscale_jpeg_is_rejected(jpeg: Encoder, smooth: np.ndarray) -> None:
    grey = np.ascontiguousarray(smooth[..., 0])
    with pytest.raises(InvalidInputError, match="1 channel"):
        decode_image(jpeg(grey))


def test_cmyk_jpeg_is_rejected(smooth: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(smooth).convert("CMYK").save(buf, "JPEG")
    with pytest.raises(InvalidInputError, match="CMYK"):
        decode_image(buf.getvalue())


@pytest.mark.parametrize("keep", [0.3, 0.7, 0.98])
def test_truncated_jpeg_is_a_422(jpeg: Encoder, smooth: np.ndarray, keep: float) -> None:
    data = jpeg(smooth)
    with pytest.raises(InvalidInputError, match="undecodable JPEG"):
        decode_image(data[: int(len(data) * keep)])


def test_declared_giant_size_is_a_413_before_decoding(jpeg: Encoder, smooth: np.ndarray) -> None:
    with pytest.raises(PayloadTooLargeError):
        decode_image(_with_size(jpeg(smooth), 65000, 65000))  # Pillow's own ceiling
    with pytest.raises(PayloadTooLargeError, match="5000x4000"):
        decode_image(_with_size(jpeg(smooth), 5000, 4000), limits=DecodeLimits(max_pixels=1_000_000))


def test_a_thin_strip_exceeds_max_side(jpeg: Encoder, smooth: np.ndarray) -> None:
    """JPEG sides stop at 65535, so 60000x1 stands in for 1x100000."""
    with pytest.raises(PayloadTooLargeError, match=r"60000x1 .*sides up to 16384"):
        decode_image(_with_size(jpeg(smooth), 60000, 1))


def test_zero_width_jpeg_is_a_422(jpeg: Encoder, smooth: np.ndarray) -> None:
    with pytest.raises(InvalidInputError):
        decode_image(_with_size(jpeg(smooth), 0, 32))
