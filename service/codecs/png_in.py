"""PNG input: IHDR checked by hand before libpng (via imagecodecs) decodes anything.

libpng rather than Pillow, because Pillow reduces 16-bit RGB PNGs to 8 bits. The header tells the
dimensions (bomb check), the channel layout and any tRNS transparency chunk, so every rejection
short of corrupt pixel data costs no decoding. Palette images are 8-bit RGB and are accepted.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import imagecodecs
import numpy as np

from service.codecs.errors import DECODER_FAILURES, corrupt_input
from service.codecs.limits import DecodeLimits, check_dimensions
from service.codecs.pixels import RawImage, require_rgb
from service.errors import InvalidInputError

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IHDR = b"\x00\x00\x00\x0dIHDR"
# colour type -> (channels, name, allowed bit depths)
_COLOR_TYPES: dict[int, tuple[int, str, frozenset[int]]] = {
    0: (1, "1 channel (greyscale)", frozenset({1, 2, 4, 8, 16})),
    2: (3, "RGB", frozenset({8, 16})),
    3: (3, "palette", frozenset({1, 2, 4, 8})),
    4: (2, "2 channels (greyscale + alpha)", frozenset({8, 16})),
    6: (4, "4 channels (RGBA)", frozenset({8, 16})),
}


@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    bit_depth: int
    color_type: int
    transparency: bool  # a tRNS chunk: decodes to an alpha channel


def read_png_header(data: bytes) -> PngHeader:
    """IHDR fields, and whether a tRNS chunk precedes the image data."""
    if len(data) < 33 or not data.startswith(_SIGNATURE) or data[8:16] != _IHDR:
        raise InvalidInputError("undecodable PNG: the IHDR header is missing or truncated", received="png")
    width, height, depth, color_type = struct.unpack(">IIBB", data[16:26])
    spec = _COLOR_TYPES.get(color_type)
    if spec is None or depth not in spec[2]:
        raise InvalidInputError(
            f"undecodable PNG: colour type {color_type} with bit depth {depth} is not valid PNG",
            received="png",
        )
    transparency = False
    pos = 33
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind in (b"IDAT", b"IEND"):
            break
        transparency |= kind == b"tRNS"
        pos += 12 + length
    return PngHeader(width, height, depth, color_type, transparency)


def decode_png(data: bytes, limits: DecodeLimits) -> RawImage:
    header = read_png_header(data)
    check_dimensions(header.height, header.width, limits, "PNG")
    channels, name, _ = _COLOR_TYPES[header.color_type]
    if header.transparency and channels == 3:
        require_rgb(4, "PNG", f"transparency (a tRNS chunk, decoding to RGBA) on its {name} pixels")
    require_rgb(channels, "PNG", name)
    try:
        pixels = imagecodecs.png_decode(data)
    except DECODER_FAILURES as exc:
        raise corrupt_input("PNG", exc) from exc
    if pixels.shape != (header.height, header.width, 3) or pixels.dtype not in (np.uint8, np.uint16):
        raise InvalidInputError(
            f"undecodable PNG: decoded {pixels.dtype} {pixels.shape} for a {header.width}x"
            f"{header.height} {name} header",
            received="png",
        )
    return RawImage(pixels, 8 if header.color_type == 3 else header.bit_depth)
