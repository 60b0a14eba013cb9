"""Which input format a body is, from its magic bytes; the declared content type only informs errors."""

from __future__ import annotations

from service.codecs.errors import UnsupportedMediaTypeError
from service.codecs.formats import ACCEPTED_INPUTS, INPUT_FORMATS, InputFormat

_SIGNATURES: tuple[tuple[bytes, InputFormat], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),  # BigTIFF
    (b"MM\x00+", "tiff"),
    (b"\x93NUMPY", "npy"),
)

# Formats people send by mistake, named so the error can say what was received.
_KNOWN_OTHERS: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"PK\x03\x04", "a ZIP archive (an .npz? send one .npy array instead)"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000 codestream"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"\x80", "a Python pickle (never loaded: send an .npy written by np.save)"),
    (b"--", "a multipart body (send the file part, or use multipart/form-data)"),
)


def _describe(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[4:8] == b"ftyp":
        return "HEIF/AVIF"
    for magic, name in _KNOWN_OTHERS:
        if data.startswith(magic):
            return name
    return f"unrecognised bytes (starting {data[:8].hex()})"


def detect_format(data: bytes, content_type: str | None = None) -> InputFormat:
    """The input format identified by `data`'s magic bytes, whatever `content_type` declares.

    Raises UnsupportedMediaTypeError (415) when no accepted format matches.
    """
    for magic, fmt in _SIGNATURES:
        if data.startswith(magic):
            return fmt
    received = _describe(data)
    declared = f" (declared content type {content_type!r})" if content_type else ""
    raise UnsupportedMediaTypeError(
        f"undecodable input: received {received}{declared}; accepted: {ACCEPTED_INPUTS}",
        received=received,
        declared_content_type=content_type,
        accepted=list(INPUT_FORMATS),
    )
