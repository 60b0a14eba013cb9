"""TIFF input via tifffile: one RGB page, 8..16-bit unsigned or float, checked before any decoding.

Only the page's tags are read before the checks: size (bomb check), tile size, compression,
channel layout and sample type; strips or tiles that point past the end of the file are reported
as truncation. Compression is limited to the lossless byte codecs, which tifffile decodes into a
buffer of the declared size; image codecs inside a TIFF (JPEG, JPEG 2000, WebP, ...) carry their
own dimensions and would decode unbounded. Float samples follow the float rule of `pixels`.
"""

from __future__ import annotations

import io

import numpy as np
import tifffile

from service.codecs.errors import DECODER_FAILURES, corrupt_input
from service.codecs.limits import DecodeLimits, check_dimensions
from service.codecs.pixels import RawImage, require_rgb
from service.errors import InvalidInputError, PayloadTooLargeError

_PHOTOMETRIC_OK = (tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.MINISBLACK)
_ACCEPTED = "uint8, uint16 (9 to 16 bits) or float16/32/64 RGB samples"
_COMPRESSIONS = {
    tifffile.COMPRESSION.NONE: "none",
    tifffile.COMPRESSION.LZW: "LZW",
    tifffile.COMPRESSION.ADOBE_DEFLATE: "Deflate",
    tifffile.COMPRESSION.DEFLATE: "Deflate",
    tifffile.COMPRESSION.PACKBITS: "PackBits",
    tifffile.COMPRESSION.ZSTD: "Zstandard",
}


def _check_page(page: tifffile.TiffPage, nbytes: int, limits: DecodeLimits) -> int:
    """Validate one page from its tags alone; returns the bit depth to scale by."""
    check_dimensions(page.imagelength, page.imagewidth, limits, "TIFF")
    if page.imagedepth > 1:
        raise InvalidInputError(f"TIFF page is a volume ({page.imagedepth} deep); accepted: one 2-D image")
    if page.is_tiled and page.tilewidth * page.tilelength > limits.max_pixels:
        raise PayloadTooLargeError(
            f"TIFF tiles of {page.tilewidth}x{page.tilelength} exceed {limits.max_pixels} pixels",
            max_pixels=limits.max_pixels,
        )
    if page.compression not in _COMPRESSIONS:
        name = getattr(page.compression, "name", str(page.compression))
        raise InvalidInputError(
            f"TIFF compression {name} is not accepted; accepted: "
            + ", ".join(sorted(set(_COMPRESSIONS.values()))),
            received=name,
        )
    spp = page.samplesperpixel
    extra = (
        f"{spp} channels ({len(page.extrasamples)} extra samples, e.g. alpha)" if page.extrasamples else None
    )
    require_rgb(spp, "TIFF", extra)
    if page.photometric not in _PHOTOMETRIC_OK:
        name = getattr(page.photometric, "name", str(page.photometric))
        raise InvalidInputError(
            f"TIFF photometric interpretation {name} is not accepted; accepted: RGB", received=name
        )
    dtype = page.dtype
    bits = page.bitspersample
    ok_int = (dtype == np.uint8 and bits == 8) or (dtype == np.uint16 and 9 <= bits <= 16)
    if not (ok_int or (dtype is not None and dtype.kind == "f")):
        raise InvalidInputError(
            f"TIFF samples are {dtype or 'unsupported'} with {bits} bits; accepted: {_ACCEPTED}",
            received=str(dtype),
        )
    ends = np.asarray(page.dataoffsets, np.int64) + np.asarray(page.databytecounts, np.int64)
    if ends.size and int(ends.max()) > nbytes:
        raise InvalidInputError(
            f"undecodable TIFF: the file is truncated (image data runs to byte {int(ends.max())} of "
            f"{nbytes}); send a complete TIFF file",
            received="tiff",
        )
    return bits


def decode_tiff(data: bytes, limits: DecodeLimits) -> RawImage:
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            if len(tif.pages) != 1:
                raise InvalidInputError(
                    f"TIFF has {len(tif.pages)} pages; accepted: a single RGB image", received="tiff"
                )
            page = tif.pages.first
            bits = _check_page(page, len(data), limits)
            pixels = page.asarray(maxworkers=1)
            if page.planarconfig == tifffile.PLANARCONFIG.SEPARATE:
                pixels = np.moveaxis(pixels, 0, -1)
    except DECODER_FAILURES as exc:
        raise corrupt_input("TIFF", exc) from exc
    if pixels.shape != (page.imagelength, page.imagewidth, 3):
        raise InvalidInputError(f"undecodable TIFF: decoded shape {pixels.shape}", received="tiff")
    return RawImage(pixels, bits)
