"""What the REST clients send and how they read answers, without I/O (shared by `Client` and
`AsyncClient`, and tested on their own).

Request: an image (array -> `.npy`, bytes as they are, a path read) and query parameters. Answer:
the cube from its NPY or OME-TIFF body, wavelengths from the TIFF or `X-Wavelengths-Nm`, the rest of
the `X-*` headers into `Result`; an error body `{"error": code, "message": ...}` into `ClientError`.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from service.client.errors import ClientError

Image = np.ndarray | bytes | str | os.PathLike[str]
Bands = str | tuple[float, float] | float
Region = str | tuple[int, int, int, int]

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"II+\x00", "image/tiff"),
    (b"MM\x00+", "image/tiff"),
    (b"\x93NUMPY", "application/x-npy"),
)


@dataclass(frozen=True)
class Result:
    """One reconstructed frame, from REST or gRPC."""

    cube: np.ndarray  # (H, W, C)
    wavelengths_nm: tuple[float, ...]
    model_version: str | None = None
    tta: str | None = None  # "none", "adapted", "dropped", "reset", ...
    session_id: str | None = None
    session_step: int | None = None
    entropy: float | None = None
    reprojection_error: float | None = None
    tiled: bool | None = None
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # REST response headers; empty over gRPC


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def content_type(data: bytes) -> str:
    """The media type of encoded image bytes, by magic (the server identifies them the same way)."""
    for magic, media in _MAGIC:
        if data.startswith(magic):
            return media
    return "application/octet-stream"


def image_bytes(image: Image) -> bytes:
    """An array as `.npy` bytes, bytes as they are, a path's file contents."""
    if isinstance(image, np.ndarray):
        return npy_bytes(image)
    if isinstance(image, bytes | bytearray | memoryview):
        return bytes(image)
    return Path(image).read_bytes()


def band_param(bands: Bands) -> str:
    if isinstance(bands, str):
        return bands
    if isinstance(bands, tuple):
        return f"{float(bands[0]):g}-{float(bands[1]):g}"
    return f"{float(bands):g}"


def region_param(region: Region) -> str:
    return region if isinstance(region, str) else ",".join(str(int(v)) for v in region)


def band_range(bands: Bands) -> tuple[float, float]:
    """`bands` as the gRPC (min, max) nm pair: 550, "550", "450-550" or (450, 550), as over REST."""
    if isinstance(bands, tuple):
        return float(bands[0]), float(bands[1])
    if isinstance(bands, str):
        lo, sep, hi = bands.partition("-")
        try:
            return (float(lo), float(hi)) if sep else (float(lo), float(lo))
        except ValueError:
            raise ValueError(f"bands={bands!r}: a wavelength or a range in nm, e.g. 550 or 450-550") from None
    return float(bands), float(bands)


def region_box(region: Region) -> tuple[int, int, int, int]:
    """`region` as (x, y, w, h): "x,y,w,h" or a 4-tuple, as over REST."""
    parts = region.split(",") if isinstance(region, str) else list(region)
    try:
        x, y, w, h = (int(v) for v in parts)
    except ValueError:
        raise ValueError(f"region={region!r}: x,y,w,h in pixels, e.g. 0,0,64,64") from None
    return x, y, w, h


def reconstruct_params(
    *,
    session_id: str | None = None,
    tta_steps: int | None = None,
    fmt: str = "npy",
    dtype: str = "float32",
    bands: Bands | None = None,
    region: Region | None = None,
    color: str = "linear",
) -> dict[str, str]:
    """The query string of `POST /reconstruct` (only what differs from the server's defaults)."""
    params = {"format": fmt}
    if dtype != "float32":
        params["dtype"] = dtype
    if color != "linear":
        params["color"] = color
    if session_id is not None:
        params["session_id"] = session_id
    if tta_steps is not None:
        params["tta_steps"] = str(tta_steps)
    if bands is not None:
        params["bands"] = band_param(bands)
    if region is not None:
        params["region"] = region_param(region)
    return params


def _float(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    return float(value) if value not in (None, "") else None


def server_timing(value: str | None) -> dict[str, float]:
    """`Server-Timing: queue;dur=1.2, inference;dur=30` -> {"queue": 1.2, "inference": 30.0} (ms)."""
    out: dict[str, float] = {}
    for part in (value or "").split(","):
        name, *params = (p.strip() for p in part.split(";"))
        for param in params:
            key, _, dur = param.partition("=")
            if name and key == "dur":
                out[name] = float(dur)
    return out


def read_cube(body: bytes, media_type: str) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """The (H, W, C) cube of a response body, and its wavelengths when the format carries them."""
    if media_type.split(";")[0].strip() == "image/tiff":
        from service.codecs.cube_read import read_cube_tiff

        tiff = read_cube_tiff(body)
        return tiff.cube, tiff.wavelengths_nm
    return np.load(io.BytesIO(body), allow_pickle=False), None


def result_from_response(body: bytes, headers: Mapping[str, str]) -> Result:
    """A 200 of `POST /reconstruct` (`headers` case-insensitive, as httpx gives them)."""
    cube, wavelengths = read_cube(body, headers.get("content-type", "application/x-npy"))
    if wavelengths is None:
        listed = headers.get("x-wavelengths-nm", "")
        wavelengths = tuple(float(w) for w in listed.split(",") if w.strip())
    step = headers.get("x-session-step")
    tiled = headers.get("x-tiled")
    return Result(
        cube=cube,
        wavelengths_nm=wavelengths,
        model_version=headers.get("x-model-version"),
        tta=headers.get("x-tta-outcome"),
        session_id=headers.get("x-session-id"),
        session_step=int(step) if step else None,
        entropy=_float(headers, "x-tta-entropy"),
        reprojection_error=_float(headers, "x-reprojection-error"),
        tiled=None if tiled is None else tiled == "true",
        timings_ms=server_timing(headers.get("server-timing")),
        headers=dict(headers.items()),
    )


def error_from_response(status: int, body: bytes, headers: Mapping[str, str]) -> ClientError:
    """A 4xx/5xx: the JSON error body when there is one, else the status and text."""
    try:
        payload: Any = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        payload = {"message": body.decode("utf-8", "replace")[:500] or f"HTTP {status}"}
    code, message = payload.pop("error", None), payload.pop("message", None)
    if "code" in payload and isinstance(payload["code"], str):  # Open Inference Protocol body
        code, message = payload.pop("code"), code
    # The body's figure when it has one (Retry-After is whole seconds, rounded up), else the header's.
    retry, precise = headers.get("retry-after"), payload.get("retry_after_s")
    retry_after = float(retry) if retry and retry.replace(".", "", 1).isdigit() else None
    if isinstance(precise, int | float) and not isinstance(precise, bool) and precise > 0:
        retry_after = float(precise)
    return ClientError(
        str(message or f"HTTP {status}"),
        status=status,
        code=str(code or f"http_{status}"),
        details=payload,
        retry_after_s=retry_after,
        request_id=headers.get("x-request-id") or payload.get("request_id"),
    )
