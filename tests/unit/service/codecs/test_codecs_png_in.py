"""PNG input: 8/16-bit RGB and palette round trips; channel, size and corruption rejections."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from service.codecs import DecodeLimits, decode_image, png_in
from service.errors import InvalidInputError, PayloadTooLargeError

Encoder = Callable[..., bytes]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _handmade_png(width: int, height: int, idat: bytes, color_type: int = 2, depth: int = 8) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _no_decoding(*_: object, **__: object) -> None:
    raise AssertionError("pixel data was decoded before the header checks")


def test_8bit_rgb_scales_by_255(png: Encoder, rgb8: np.ndarray) -> None:
    out = decode_image(png(rgb8))
    assert (out.source_format, out.bit_depth, out.color) == ("png", 8, "linear")
    assert out.rgb.dtype == np.float32 and out.rgb.flags.c_contiguous
    np.testing.assert_array_equal(out.rgb, (rgb8 / 255.0).astype(np.float32))


def test_16bit_rgb_keeps_all_16_bits(png: Encoder, rgb16: np.ndarray) -> None:
    out = decode_image(png(rgb16))
    assert out.bit_depth == 16
    np.testing.assert_array_equal(out.rgb, (rgb16 / 65535.0).astype(np.float32))


def test_palette_png_is_8bit_rgb(rgb8: np.ndarray) -> None:
    im = Image.fromarray(rgb8).quantize(16)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    out = decode_image(buf.getvalue())
    expected = np.asarray(im.convert("RGB")) / 255.0
    np.testing.assert_allclose(out.rgb, expected, atol=1e-7)
    assert out.bit_depth == 8


def test_declared_content_type_does_not_override_magic(png: Encoder, rgb8: np.ndarray) -> None:
    assert decode_image(png(rgb8), content_type="image/jpeg").source_format == "png"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("L", "1 channel"), ("LA", "2 channels"), ("RGBA", "4 channels"), ("I;16", "1 channel")],
)
def test_non_rgb_layouts_are_rejected_naming_what_was_sent(
    png: Encoder, rgb8: np.ndarray, mode: str, expected: str
) -> None:
    im = Image.fromarray(rgb8).convert(mode if mode != "I;16" else "I").convert(mode)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    with pytest.raises(InvalidInputError, match=expected) as err:
        decode_image(buf.getvalue())
    assert "exactly 3 channels (RGB)" in err.value.message


@pytest.mark.parametrize("palette", [True, False])
def test_transparency_is_rejected_not_dropped(png: Encoder, rgb8: np.ndarray, palette: bool) -> None:
    im = Image.fromarray(rgb8).quantize(16) if palette else Image.fromarray(rgb8)
    buf = io.BytesIO()
    im.save(buf, "PNG", transparency=0 if palette else (1, 2, 3))
    with pytest.raises(InvalidInputError, match="transparency"):
        decode_image(buf.getvalue())


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_png_is_a_422(png: Encoder, rgb8: np.ndarray, cut: float) -> None:
    data = png(rgb8)
    with pytest.raises(InvalidInputError, match="truncated or corrupt"):
        decode_image(data[: int(len(data) * cut)])


def test_truncated_header_is_a_422(png: Encoder, rgb8: np.ndarray) -> None:
    with pytest.raises(InvalidInputError, match="IHDR"):
        decode_image(png(rgb8)[:20])


def test_corrupt_image_data_is_a_422(png: Encoder, rgb8: np.ndarray) -> None:
    data = bytearray(png(rgb8))
    start = data.index(b"IDAT") + 8
    data[start : start + 16] = bytes(16)
    with pytest.raises(InvalidInputError, match="undecodable PNG"):
        decode_image(bytes(data))


def test_decompression_bomb_is_rejected_from_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = _handmade_png(100_000, 100_000, zlib.compress(bytes(1 << 20), 9))
    assert len(bomb) < 10_000
    monkeypatch.setattr(png_in.imagecodecs, "png_decode", _no_decoding)
    with pytest.raises(PayloadTooLargeError, match="100000x100000") as err:
        decode_image(bomb)
    assert err.value.http_status == 413


def test_zero_sized_png_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="at least 1"):
        decode_image(_handmade_png(0, 0, zlib.compress(b"")))


def test_one_by_100000_exceeds_max_side(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(png_in.imagecodecs, "png_decode", _no_decoding)
    with pytest.raises(PayloadTooLargeError, match="sides up to 16384"):
        decode_image(_handmade_png(100_000, 1, zlib.compress(bytes(300_001))))


def test_limits_are_the_callers(png: Encoder, rgb8: np.ndarray) -> None:
    with pytest.raises(PayloadTooLargeError, match="at most 100 pixels"):
        decode_image(png(rgb8), limits=DecodeLimits(max_pixels=100))


def test_invalid_color_type_and_depth_is_a_422() -> None:
    with pytest.raises(InvalidInputError, match="colour type 2 with bit depth 4"):
        decode_image(_handmade_png(2, 2, zlib.compress(bytes(10)), depth=4))
