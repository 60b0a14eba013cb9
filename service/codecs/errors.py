"""Codec-specific client errors, and the one place that turns a decoder's failure into a 4xx.

Third-party decoders (libpng via imagecodecs, Pillow, tifffile, numpy's npy reader) fed hostile
bytes raise whatever their parsers stumble on; `DECODER_FAILURES` names those classes so each
decoder translates them to `InvalidInputError` and a client never sees a 500 for bad bytes.
"""

from __future__ import annotations

import struct
import tokenize
import zlib

from service.errors import InvalidInputError, ServiceError

# Exception classes a decoder may raise on malformed input (not MemoryError: that is ours to see).
DECODER_FAILURES: tuple[type[Exception], ...] = (
    ValueError,  # also UnicodeDecodeError, tifffile.TiffFileError
    TypeError,
    LookupError,  # KeyError, IndexError
    ArithmeticError,  # OverflowError, ZeroDivisionError
    OSError,  # also PIL.UnidentifiedImageError, "image file is truncated"
    EOFError,
    RuntimeError,  # also imagecodecs' *Error classes, RecursionError
    SyntaxError,  # Pillow reports some broken headers so
    AttributeError,  # tifffile on some nonsense tag values
    struct.error,
    zlib.error,
    tokenize.TokenError,  # numpy's fallback parse of a malformed .npy header
)


class UnsupportedMediaTypeError(InvalidInputError):
    """Bytes that are none of the accepted formats (HTTP 415; gRPC INVALID_ARGUMENT)."""

    http_status = 415
    code = "unsupported_media_type"


class NotAcceptableError(ServiceError):
    """The client accepts none of the formats the cube can be encoded in (HTTP 406)."""

    http_status = 406
    grpc_code = "INVALID_ARGUMENT"
    code = "not_acceptable"


def corrupt_input(fmt: str, exc: BaseException) -> InvalidInputError:
    """The 422 for bytes that start like `fmt` but do not decode (truncated or corrupt)."""
    reason = " ".join(str(exc).split())[:200] or type(exc).__name__
    return InvalidInputError(
        f"undecodable {fmt}: the file is truncated or corrupt ({reason}); send a complete {fmt} file",
        received=fmt,
    )
