"""`decode_image`: request bytes -> the model's input contract (float32 linear RGB in [0, 1]).

Embedded colour metadata (PNG gAMA/sRGB/iCCP chunks, JPEG ICC profiles, EXIF) is ignored: the
client states the contract with `color=`, so the same bytes always give the same input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from service.codecs.formats import InputFormat
from service.codecs.jpeg_in import decode_jpeg
from service.codecs.limits import DEFAULT_LIMITS, DecodeLimits, check_body_size
from service.codecs.npy_in import decode_npy
from service.codecs.pixels import COLORS, Color, RawImage, to_unit_rgb
from service.codecs.png_in import decode_png
from service.codecs.sniff import detect_format
from service.codecs.tiff_in import decode_tiff
from service.errors import InvalidInputError

_DECODERS: dict[InputFormat, Callable[[bytes, DecodeLimits], RawImage]] = {
    "png": decode_png,
    "jpeg": decode_jpeg,
    "tiff": decode_tiff,
    "npy": decode_npy,
}
_LABELS: dict[InputFormat, str] = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "npy": ".npy"}


@dataclass(frozen=True)
class DecodedImage:
    """One decoded frame and the input contract applied to it (for response headers)."""

    rgb: np.ndarray  # (H, W, 3) float32 in [0, 1], C-contiguous, owned (never a view of the body)
    source_format: InputFormat
    bit_depth: int  # bits per sample as the file declared them (16 or 32 for float16/float32)
    color: Color  # "linear": used as is; "srgb": inverse sRGB transfer function applied


def decode_image(
    data: bytes,
    *,
    content_type: str | None = None,
    color: Color = "linear",
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> DecodedImage:
    """Decode one frame. The format comes from the magic bytes; `content_type` only informs errors.

    Raises InvalidInputError (422), PayloadTooLargeError (413) or UnsupportedMediaTypeError (415),
    all with messages saying what was received and what is accepted. CPU-bound: call it off the
    event loop.
    """
    if color not in COLORS:
        raise InvalidInputError(
            f"unknown color {color!r}; accepted: {', '.join(COLORS)}", received=color, accepted=list(COLORS)
        )
    check_body_size(len(data), limits)
    fmt = detect_format(data, content_type)
    raw = _DECODERS[fmt](data, limits)
    rgb = to_unit_rgb(raw, color, _LABELS[fmt])
    return DecodedImage(rgb=rgb, source_format=fmt, bit_depth=raw.bit_depth, color=color)
