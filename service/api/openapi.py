"""OpenAPI pieces shared by the routes: error responses per status, the cube's response headers and
the raw-or-multipart image body (read by hand, so FastAPI cannot infer its schema)."""

from __future__ import annotations

from typing import Any

from service.api.schemas import ErrorBody

_ERRORS: dict[int, str] = {
    400: "Malformed request",
    401: "An API key is required (when the server sets keys) and none, or an unknown one, was sent",
    403: "The key sent does not open this route (an inference key on an admin route)",
    404: "Not found",
    406: "None of the Accept-ed media types can be produced (image/tiff, application/x-npy)",
    413: "Body above max_body_bytes, or an image above max_image_side / max_image_pixels (checked from "
    "its header, before decoding: decompression bombs)",
    415: "Bytes that are none of PNG, JPEG, TIFF or .npy",
    422: "Undecodable or invalid input (truncated file, wrong channel count, zero dimensions, NaN/inf, "
    "pickled or object .npy, values outside [0, 1]) or an invalid option",
    429: "The bounded queue is full, or this client's rate limit is reached: retry after Retry-After seconds",
    500: "Internal error: logged with the request id, no details leave the server",
    503: "Not ready (model loading) or the session store is unavailable",
    504: "No result within request_timeout_s (or the client's timeout_s)",
}

_BINARY = {"type": "string", "format": "binary"}


def errors(*statuses: int, **overrides: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for `statuses`; `overrides` like `e404="no such session"` reword one."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "model": ErrorBody,
            "description": overrides.get(f"e{status}", _ERRORS[status]),
        }
        if status == 429:
            entry["headers"] = {
                "Retry-After": {
                    "description": "seconds to wait before retrying",
                    "schema": {"type": "integer"},
                }
            }
        out[status] = entry
    return out


def guarded(admin: bool = False) -> dict[int | str, dict[str, Any]]:
    """The answers of the access guards (`deps.require_*`): 401, 429, and 403 on admin routes."""
    return errors(401, 403, 429) if admin else errors(401, 429)


def _header(description: str, example: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}, "example": example}


CUBE_HEADERS: dict[str, Any] = {
    "X-Cube-Shape": _header("H,W,C of the returned cube", "480,640,31"),
    "X-Wavelengths-Nm": _header("band centres of the returned bands, nm", "400,410,420"),
    "X-Model-Version": _header("checkpoint version that produced the cube", "3f2a9c1d"),
    "X-TTA-Outcome": _header(
        "none | adapted | dropped | reset | skipped_store_unavailable | kept_local | skipped_conflict. "
        "In a session, what this frame's adaptation step did: the cube itself was computed with the "
        "parameters the session had before that step (as a stream calibrates), so the first frame "
        "of a session returns the trained model's cube; without a session, tta_steps > 0 adapts "
        "first and returns the adapted cube",
        "adapted",
    ),
    "X-TTA-Entropy": _header("codebook-query entropy of this frame (when it adapted)", "3.21"),
    "X-Session-ID": _header("the session this frame belonged to (when any)", "cam-1"),
    "X-Session-Step": _header("the session's adaptation steps after this frame (when any)", "2"),
    "X-Reprojection-Error": _header(
        "RMSE of the input against the cube seen by the training camera", "0.012"
    ),
    "X-Input-Color": _header("input contract applied: linear or srgb", "linear"),
    "X-Tiled": _header("true when the frame ran as overlapping tiles", "false"),
    "Server-Timing": _header(
        "decode, queue, inference, tta, encode and total (the core's share) in ms",
        "decode;dur=1.2, queue;dur=0.8, inference;dur=35.0, tta;dur=0.0, encode;dur=2.1, total;dur=36.1",
    ),
    "X-Request-ID": _header("this request's id (the client's, when it sent a plain one)", "9b1d..."),
    "Content-Disposition": _header("suggested file name", 'attachment; filename="cube.ome.tif"'),
}

IMAGE_TYPES = ("image/png", "image/jpeg", "image/tiff", "application/x-npy", "application/octet-stream")

_RAW_EXAMPLES = {
    "png": {
        "summary": "a 16-bit linear PNG, cube as .npy",
        "description": "`curl --data-binary @frame.png 'http://localhost:8000/reconstruct?format=npy' "
        "-o cube.npy`",
    },
    "session": {
        "summary": "a frame of a stream (adapts per session)",
        "description": "`curl --data-binary @frame.tif -H 'X-Session-ID: cam-1' "
        "http://localhost:8000/reconstruct -o cube.ome.tif`",
    },
}

IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "One RGB frame: PNG or TIFF (8/16-bit), JPEG (8-bit), float32 RGB TIFF, or an "
        "H×W×3 .npy (uint8, uint16 or float in [0, 1]). Raw (any Content-Type: the format is "
        "read from the magic bytes) or multipart/form-data with one file part. Example: "
        "`curl --data-binary @frame.png -H 'Content-Type: image/png' "
        "'http://localhost:8000/reconstruct?format=npy' -o cube.npy`",
        "content": {
            **{kind: {"schema": _BINARY, "examples": _RAW_EXAMPLES} for kind in IMAGE_TYPES},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": _BINARY},
                    "required": ["file"],
                },
                "encoding": {"file": {"contentType": ", ".join(IMAGE_TYPES[:4])}},
                "examples": {
                    "upload": {
                        "summary": "one file part",
                        "description": "`curl -F file=@frame.jpg "
                        "'http://localhost:8000/reconstruct?color=srgb&bands=450-650&compression=zstd' "
                        "-o cube.ome.tif`",
                    }
                },
            },
        },
    }
}

CUBE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The cube (H×W×C): OME-TIFF (planar CYX, band wavelengths in the OME Channel "
        "elements and a MapAnnotation) or plain .npy (wavelengths in X-Wavelengths-Nm)",
        "content": {"image/tiff": {"schema": _BINARY}, "application/x-npy": {"schema": _BINARY}},
        "headers": CUBE_HEADERS,
    }
}


def inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its `$defs` references inlined (for `openapi_extra` bodies)."""
    defs = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved
