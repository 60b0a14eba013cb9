"""The catalogue of hostile (and a few valid but unusual) inputs, as data: what is sent and what each
edge must answer. `test_hostile_inputs.py` sends every entry over REST and gRPC to one server.

Limits assumed (`HOSTILE_LIMITS`): bodies up to 1 MiB, gRPC messages up to 2 MiB, the default image
limits (sides up to 16384, 16 Mpx). gRPC carries the same bytes in `Image.encoded`; `grpc=None`
marks what only exists on HTTP (content types, multipart, unparsable query values).
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import imagecodecs
import numpy as np
import tifffile
from PIL import Image

HOSTILE_LIMITS: dict[str, Any] = {"max_body_bytes": 1 << 20, "grpc_max_message_bytes": 2 << 20}
BAD, BIG, MEDIA, OK = "invalid_input", "payload_too_large", "unsupported_media_type", ""


@dataclass(frozen=True)
class Hostile:
    name: str
    body: bytes
    http: int  # expected status
    code: str  # expected `error` of the JSON body and gRPC `error-code` ("" for a success)
    grpc: str | None = "INVALID_ARGUMENT"  # expected status code name; None: HTTP only
    content_type: str | None = "application/octet-stream"
    params: dict[str, str] = field(default_factory=dict)  # REST query
    fields: dict[str, Any] = field(default_factory=dict)  # gRPC ReconstructRequest fields
    grpc_error: str | None = None  # gRPC error-code when it differs from `code` (None: same)


def rgb8(h: int = 8, w: int = 8, c: int = 3) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, c), dtype=np.uint8).squeeze()


def png(a: np.ndarray) -> bytes:
    return bytes(imagecodecs.png_encode(a))


def jpeg(a: np.ndarray, mode: str | None = None) -> bytes:
    out = io.BytesIO()
    image = Image.fromarray(a)
    (image.convert(mode) if mode else image).save(out, "JPEG", quality=90)
    return out.getvalue()


def tiff(a: np.ndarray, pages: int = 1, **kw: Any) -> bytes:
    out = io.BytesIO()
    with tifffile.TiffWriter(out) as w:
        for _ in range(pages):
            w.write(a, photometric="rgb" if a.ndim == 3 and a.shape[-1] in (3, 4) else None, **kw)
    return out.getvalue()


def npy(a: np.ndarray, allow_pickle: bool = False) -> bytes:
    out = io.BytesIO()
    np.save(out, a, allow_pickle=allow_pickle)
    return out.getvalue()


def npy_with_header(header: str, data: bytes = b"", header_len: int | None = None) -> bytes:
    raw = header.encode()
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", header_len or len(raw)) + raw + data


def png_declaring(width: int, height: int) -> bytes:
    """A few hundred bytes whose IHDR claims width x height RGB pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\x00" * 4096)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real JPEG whose SOF0 header is patched to claim width x height."""
    data = bytearray(jpeg(rgb8(16, 16)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def tiff_declaring(width: int, height: int) -> bytes:
    """A small TIFF whose ImageWidth/ImageLength tags are patched to width x height."""
    data = bytearray(tiff(rgb8(4, 4)))
    for tag, value in ((256, width), (257, height)):
        for kind in (3, 4):  # SHORT or LONG
            entry = struct.pack("<HHI", tag, kind, 1)
            at = data.find(entry)
            if at >= 0:
                data[at + 2 : at + 12] = struct.pack("<HII", 4, 1, value)
    return bytes(data)


def multipart(parts: list[tuple[str, bytes]], boundary: str = "b0und") -> bytes:
    out = b""
    for name, content in parts:
        out += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.png"\r\n'
                f"Content-Type: image/png\r\n\r\n"
            ).encode()
            + content
            + b"\r\n"
        )
    return out + f"--{boundary}--\r\n".encode()


def _floats(value: float) -> np.ndarray:
    a = np.random.default_rng(1).random((8, 8, 3), dtype=np.float32)
    a[3, 4, 1] = value
    return a


def catalogue() -> list[Hostile]:
    good = png(rgb8())
    mp = "multipart/form-data; boundary=b0und"
    corrupt_png = bytearray(png(rgb8(32, 32)))
    idat = corrupt_png.index(b"IDAT")
    corrupt_png[idat + 8 : idat + 40] = b"\xff" * 32
    corrupt_tiff = bytearray(tiff(rgb8()))
    corrupt_tiff[4:8] = struct.pack("<I", 1 << 30)  # first IFD far past the end
    return [
        # PNG
        Hostile("png truncated", good[:60], 422, BAD),
        Hostile("png corrupt pixel data", bytes(corrupt_png), 422, BAD),
        Hostile("png 0x0", png_declaring(0, 0), 422, BAD),
        Hostile("png 1x100000", png(np.zeros((1, 100_000, 3), np.uint8)), 413, BIG),
        Hostile("png bomb 50000^2", png_declaring(50_000, 50_000), 413, BIG),
        Hostile("png 1 channel", png(rgb8(c=1)), 422, BAD),
        Hostile("png 2 channels", png(rgb8(c=2)), 422, BAD),
        Hostile("png 4 channels", png(rgb8(c=4)), 422, BAD),
        Hostile("png 16-bit (valid)", png(rgb8().astype(np.uint16) * 257), 200, OK, "OK"),
        # JPEG
        Hostile("jpeg truncated", jpeg(rgb8(32, 32))[:200], 422, BAD),
        Hostile("jpeg corrupt", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, 422, BAD),
        Hostile("jpeg 1 channel", jpeg(rgb8(c=1)), 422, BAD),
        Hostile("jpeg CMYK", jpeg(rgb8(), "CMYK"), 422, BAD),
        Hostile("jpeg bomb 60000^2", jpeg_declaring(60_000, 60_000), 413, BIG),
        # TIFF
        Hostile("tiff truncated", tiff(rgb8(32, 32))[:300], 422, BAD),
        Hostile("tiff corrupt IFD offset", bytes(corrupt_tiff), 422, BAD),
        Hostile("tiff bomb 100000^2", tiff_declaring(100_000, 100_000), 413, BIG),
        Hostile("tiff float NaN", tiff(_floats(np.nan)), 422, BAD),
        Hostile("tiff float negative", tiff(_floats(-0.5)), 422, BAD),
        Hostile("tiff 4 channels", tiff(rgb8(c=4), extrasamples=[2]), 422, BAD),
        Hostile("tiff 2 pages", tiff(rgb8(), pages=2), 422, BAD),
        Hostile("tiff 8-bit (valid)", tiff(rgb8()), 200, OK, "OK"),
        Hostile("tiff 16-bit (valid)", tiff(rgb8().astype(np.uint16) * 257), 200, OK, "OK"),
        Hostile("tiff float32 (valid)", tiff(_floats(0.5)), 200, OK, "OK"),
        # .npy
        Hostile("npy pickle", npy(np.array([{"x": 1}], dtype=object), allow_pickle=True), 422, BAD),
        Hostile(
            "npy object header",
            npy_with_header("{'descr': '|O', 'fortran_order': False, 'shape': (8, 8, 3), }\n", b"\0" * 64),
            422,
            BAD,
        ),
        Hostile("npy int64", npy(np.zeros((8, 8, 3), np.int64)), 422, BAD),
        Hostile("npy complex", npy(np.zeros((8, 8, 3), np.complex64)), 422, BAD),
        Hostile("npy NaN", npy(_floats(np.nan)), 422, BAD),
        Hostile("npy inf", npy(_floats(np.inf)), 422, BAD),
        Hostile("npy huge header", npy_with_header("{" + " " * 60_000 + "}\n"), 422, BAD),
        Hostile("npy channels first", npy(np.zeros((3, 8, 8), np.float32)), 422, BAD),
        Hostile("npy 0x0", npy(np.zeros((0, 0, 3), np.float32)), 422, BAD),
        Hostile("npy truncated data", npy(np.zeros((8, 8, 3), np.float32))[:-10], 422, BAD),
        # bytes that are no accepted format
        Hostile("empty body", b"", 422, BAD),
        Hostile("wrong magic bytes", b"\x13\x37" + bytes(range(200)), 415, MEDIA),
        Hostile("GIF", b"GIF89a" + b"\0" * 64, 415, MEDIA),
        Hostile("raw pickle", b"\x80\x04\x95" + b"\0" * 32, 415, MEDIA),
        # sizes
        Hostile("body over max_body_bytes", b"\x89PNG" + b"\0" * (1_200_000), 413, BIG),
        Hostile(
            "body over the gRPC message limit",
            b"\x89PNG" + b"\0" * (3 << 20),
            413,
            BIG,
            grpc="RESOURCE_EXHAUSTED",
            grpc_error="",
        ),
        # HTTP framing
        Hostile("png declared as JSON (magic bytes win)", good, 200, OK, None, "application/json"),
        Hostile("garbage declared as image/png", b"hello world", 415, MEDIA, None, "image/png"),
        Hostile(
            "multipart without boundary", multipart([("f", good)]), 422, BAD, None, "multipart/form-data"
        ),
        Hostile("multipart truncated", multipart([("f", good)])[:80], 422, BAD, None, mp),
        Hostile("multipart two files", multipart([("a", good), ("b", good)]), 422, BAD, None, mp),
        Hostile("multipart no file", b"--b0und--\r\n", 422, BAD, None, mp),
        # options
        Hostile(
            "session id with spaces",
            good,
            422,
            BAD,
            params={"session_id": "cam 1"},
            fields={"session_id": "cam 1"},
        ),
        Hostile(
            "session id of 500 characters",
            good,
            422,
            BAD,
            params={"session_id": "s" * 500},
            fields={"session_id": "s" * 500},
        ),
        Hostile(
            "session id non-ASCII",
            good,
            422,
            BAD,
            params={"session_id": "kamera-\u00e9\u2603"},
            fields={"session_id": "kamera-\u00e9\u2603"},
        ),
        Hostile(
            "tta_steps 2^32-1 (uint32 max)",
            good,
            422,
            BAD,
            params={"tta_steps": str(2**32 - 1)},
            fields={"tta_steps": 2**32 - 1},
        ),
        Hostile("tta_steps -1 (uint32 on gRPC)", good, 422, BAD, None, params={"tta_steps": "-1"}),
        Hostile("tta_steps 10^30", good, 422, BAD, None, params={"tta_steps": "1" + "0" * 30}),
        Hostile("tta_steps not a number", good, 422, BAD, None, params={"tta_steps": "lots"}),
    ]
