"""The response side of a reconstruction: headers describing the cube, and the cube streamed from the
codec's chunks (NPY: the header, then slices of the array itself; nothing is joined)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from fastapi.responses import StreamingResponse

from service.codecs import EncodedCube
from service.contracts import ReconstructResult

SLICE_BYTES = 1 << 20  # one send per MiB, so the server's write buffer applies back-pressure


def _num(value: float) -> str:
    return f"{value:.6g}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def server_timing(result: ReconstructResult, decode_s: float, encode_s: float) -> str:
    t = result.timings
    parts = [
        ("decode", decode_s),
        ("queue", t.queue_s),
        ("inference", t.inference_s),
        ("tta", t.tta_s),
        ("encode", encode_s),
        ("total", t.total_s),
    ]
    return ", ".join(f"{name};dur={_ms(s)}" for name, s in parts)


def cube_headers(
    result: ReconstructResult,
    shape: Sequence[int],
    wavelengths_nm: Sequence[float],
    *,
    color: str,
    session_id: str | None,
    decode_s: float,
    encode_s: float,
) -> dict[str, str]:
    """The headers documented in `openapi.CUBE_HEADERS`, for the cube as returned (bands, region)."""
    headers = {
        "X-Cube-Shape": ",".join(str(n) for n in shape),
        "X-Wavelengths-Nm": ",".join(f"{w:g}" for w in wavelengths_nm),
        "X-Model-Version": result.model_version,
        "X-TTA-Outcome": result.tta.value,
        "X-Input-Color": color,
        "X-Tiled": "true" if result.tiled else "false",
        "Server-Timing": server_timing(result, decode_s, encode_s),
    }
    if result.entropy is not None:
        headers["X-TTA-Entropy"] = _num(result.entropy)
    if session_id is not None:
        headers["X-Session-ID"] = session_id
    if result.session_step is not None:
        headers["X-Session-Step"] = str(result.session_step)
    if result.reprojection_error is not None:
        headers["X-Reprojection-Error"] = _num(result.reprojection_error)
    return headers


async def _slices(encoded: EncodedCube) -> AsyncIterator[memoryview]:
    for chunk in encoded.chunks:
        view = memoryview(chunk).cast("B")
        for start in range(0, view.nbytes, SLICE_BYTES):
            yield view[start : start + SLICE_BYTES]


def cube_response(encoded: EncodedCube, headers: dict[str, str]) -> StreamingResponse:
    headers = {
        **headers,
        "Content-Length": str(encoded.nbytes),
        "Content-Disposition": f'attachment; filename="cube{encoded.extension}"',
    }
    return StreamingResponse(_slices(encoded), media_type=encoded.media_type, headers=headers)
