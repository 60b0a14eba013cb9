"""`.npy` input: the header is parsed and vetted (size, version, dtype, shape) before any data is read.

Loading uses `np.load(..., allow_pickle=False)` only after the dtype is known to be a plain
unsigned integer or float, so object, structured and pickled arrays never reach it. Integers are
scaled by their width (uint8 by 255, uint16 by 65535); floats must already lie in [0, 1].
"""

from __future__ import annotations

import io
import re
import struct
import threading

import numpy as np

from service.codecs.errors import DECODER_FAILURES
from service.codecs.limits import DecodeLimits, check_dimensions
from service.codecs.pixels import RawImage, require_rgb
from service.errors import InvalidInputError

MAX_HEADER_BYTES = 4096  # a real (H, W, 3) header is ~128 bytes; numpy's own cap is 10000
_KINDS = {"u1": 8, "u2": 16, "f2": 16, "f4": 32, "f8": 64}
_ACCEPTED = "uint8, uint16, float16, float32 or float64"
_HEADER_READERS = {1: np.lib.format.read_array_header_1_0, 2: np.lib.format.read_array_header_2_0}
# numpy parses the header with ast.literal_eval, and CPython 3.11's AST construction keeps its
# recursion depth in per-interpreter state: two decodes in worker threads at once rarely fail with
# "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905; seen here as one
# 500 in ~800 requests under overload). The parse takes microseconds, so it runs under one lock.
_HEADER_LOCK = threading.Lock()


def _bad(message: str) -> InvalidInputError:
    return InvalidInputError(f"undecodable .npy: {message}", received="npy")


def _read_header(data: bytes) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset), refusing oversized or unreadable headers."""
    if len(data) < 10:
        raise _bad("the header is truncated")
    major, minor = data[6], data[7]
    if major not in _HEADER_READERS or minor != 0:
        raise _bad(f"format version {major}.{minor} is not accepted; accepted: 1.0 and 2.0 (np.save)")
    size_fmt = "<H" if major == 1 else "<I"
    prefix = 8 + struct.calcsize(size_fmt)
    if len(data) < prefix:
        raise _bad("the header is truncated")
    (header_len,) = struct.unpack(size_fmt, data[8:prefix])
    if header_len > MAX_HEADER_BYTES:
        raise InvalidInputError(
            f"undecodable .npy: header of {header_len} bytes exceeds the {MAX_HEADER_BYTES}-byte limit; "
            "write the array with np.save",
            received="npy",
        )
    header = data[prefix : prefix + header_len]
    if len(header) < header_len or not header.isascii() or b"\\" in header:
        # np.save writes plain ASCII; escapes would only reach ast.literal_eval's warnings
        raise _bad("the header is truncated or not the plain ASCII that np.save writes")
    stream = io.BytesIO(data)
    stream.seek(8)
    try:
        with _HEADER_LOCK:
            shape, _fortran_order, dtype = _HEADER_READERS[major](stream, max_header_size=MAX_HEADER_BYTES)
    except DECODER_FAILURES as exc:
        # numpy's words, without the process's memory addresses ("<ast.Call object at 0x7f...>")
        reason = re.sub(r" at 0x[0-9a-fA-F]+", "", " ".join(str(exc).split()))[:200]
        raise _bad(f"unreadable header ({reason})") from exc
    return tuple(shape), dtype, prefix + header_len


def decode_npy(data: bytes, limits: DecodeLimits) -> RawImage:
    shape, dtype, offset = _read_header(data)
    kind = f"{dtype.kind}{dtype.itemsize}"
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or kind not in _KINDS:
        what = "object (pickled) arrays are never loaded; " if dtype.hasobject else ""
        raise InvalidInputError(
            f".npy dtype {dtype.descr if dtype.fields else dtype.str} is not accepted; {what}"
            f"accepted: {_ACCEPTED}",
            received=str(dtype),
        )
    if len(shape) != 3:
        hint = " (greyscale: stack it to H×W×3)" if len(shape) == 2 else ""
        raise InvalidInputError(
            f".npy array has shape {shape}; accepted: (H, W, 3){hint}", received_shape=list(shape)
        )
    check_dimensions(shape[0], shape[1], limits, ".npy")
    if shape[2] != 3:
        if shape[0] == 3:
            raise InvalidInputError(
                f".npy array has shape {shape}, channels first; accepted: channels last (H, W, 3): "
                "send np.moveaxis(a, 0, -1)",
                received_shape=list(shape),
            )
        require_rgb(shape[2], ".npy", f"{shape[2]} channels (shape {shape})")
    expected = offset + shape[0] * shape[1] * 3 * dtype.itemsize
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "followed by extra bytes"
        raise _bad(f"the data is {state} ({len(data)} bytes, the header implies {expected})")
    try:
        pixels = np.load(io.BytesIO(data), allow_pickle=False, max_header_size=MAX_HEADER_BYTES)
    except DECODER_FAILURES as exc:
        raise _bad(f"unreadable data ({exc})") from exc
    return RawImage(pixels, _KINDS[kind])
