"""Format detection by magic bytes, the declared content type's role, and body/size limits."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from service.codecs import DecodeLimits, UnsupportedMediaTypeError, decode_image, detect_format
from service.errors import InvalidInputError, PayloadTooLargeError, ServiceError

Encoder = Callable[..., bytes]


def test_each_format_is_detected_by_its_magic(
    png: Encoder, jpeg: Encoder, tiff: Encoder, npy: Encoder, rgb8: np.ndarray
) -> None:
    assert detect_format(png(rgb8)) == "png"
    assert detect_format(jpeg(rgb8)) == "jpeg"
    assert detect_format(tiff(rgb8, photometric="rgb")) == "tiff"
    assert detect_format(tiff(rgb8, photometric="rgb", bigtiff=True)) == "tiff"
    assert detect_format(npy(rgb8)) == "npy"


@pytest.mark.parametrize("declared", ["image/png", "application/octet-stream", "text/plain", None])
def test_a_mismatched_content_type_is_fine(tiff: Encoder, rgb8: np.ndarray, declared: str | None) -> None:
    assert decode_image(tiff(rgb8, photometric="rgb"), content_type=declared).source_format == "tiff"


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"GIF89a\x01\x00\x01\x00", "GIF"),
        (b"BM" + bytes(40), "BMP"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "WebP"),
        (b"PK\x03\x04" + bytes(20), "npz"),
        (b"\x00\x00\x00\x1cftypheic", "HEIF"),
        (b"<html>hello</html>", "unrecognised bytes"),
        (b"--boundary\r\nContent-Disposition", "multipart"),
    ],
)
def test_unknown_magic_is_a_415_saying_what_is_accepted(data: bytes, named: str) -> None:
    with pytest.raises(UnsupportedMediaTypeError) as err:
        decode_image(data, content_type="image/png")
    error = err.value
    assert error.http_status == 415 and error.grpc_code == "INVALID_ARGUMENT"
    assert isinstance(error, InvalidInputError) and isinstance(error, ServiceError)
    assert named in error.message and "undecodable input" in error.message
    assert "accepted: PNG" in error.message and "'image/png'" in error.message
    body = error.to_dict()
    assert body["error"] == "unsupported_media_type" and body["accepted"] == ["png", "jpeg", "tiff", "npy"]


def test_empty_body_is_a_422() -> None:
    with pytest.raises(InvalidInputError, match="empty body"):
        decode_image(b"")


def test_oversize_body_is_a_413_before_anything_else() -> None:
    with pytest.raises(PayloadTooLargeError, match="exceeds the limit of 8 bytes") as err:
        decode_image(b"not even an image", limits=DecodeLimits(max_bytes=8))
    assert err.value.http_status == 413 and err.value.details["max_bytes"] == 8


@pytest.mark.parametrize("field", ["max_bytes", "max_pixels", "max_side"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        DecodeLimits(**{field: 0})
