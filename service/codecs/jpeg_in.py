"""JPEG input via Pillow: 8-bit RGB only, size read lazily from the header before decoding.

The EXIF orientation tag is not applied: the cube is returned in the stored pixel order, the order
numpy, tifffile and `np.asarray(Image.open(...))` give, so cube and input line up pixel for pixel.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from service.codecs.errors import DECODER_FAILURES, corrupt_input
from service.codecs.limits import DecodeLimits, check_dimensions
from service.codecs.pixels import RawImage, require_rgb
from service.errors import InvalidInputError, PayloadTooLargeError

_MODES = {"L": "1 channel (greyscale)", "CMYK": "4 channels (CMYK)"}


def decode_jpeg(data: bytes, limits: DecodeLimits) -> RawImage:
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as im:
            width, height = im.size
            check_dimensions(height, width, limits, "JPEG")
            if im.mode != "RGB":
                require_rgb(len(im.getbands()), "JPEG", _MODES.get(im.mode, f"mode {im.mode}"))
                raise InvalidInputError(f"JPEG colour mode {im.mode} is not accepted; accepted: RGB JPEG")
            im.load()
            pixels = np.asarray(im)
    except Image.DecompressionBombError as exc:  # Pillow's own ceiling, hit while reading the header
        raise PayloadTooLargeError(
            f"JPEG declares too many pixels ({exc}); accepted: sides up to {limits.max_side} and at "
            f"most {limits.max_pixels} pixels in all",
            max_side=limits.max_side,
            max_pixels=limits.max_pixels,
        ) from exc
    except DECODER_FAILURES as exc:
        raise corrupt_input("JPEG", exc) from exc
    return RawImage(pixels, 8)
