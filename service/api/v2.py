"""The Open Inference Protocol (KServe v2) REST surface, so Triton/KServe clients work unchanged.

One model, named by `ModelInfo.name`; its version is the checkpoint version. Readiness answers
200 or 503 (probes and clients read any non-200 as "not ready"). Errors are `{"error": message}`.
"""

from __future__ import annotations

import importlib.metadata
import time
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from service.api.body import check_content_encoding, unless_disconnected
from service.api.cube_response import cube_headers
from service.api.deps import ContextDep, CoreDep, InferenceDep
from service.api.errors import ModelNotFoundError
from service.api.oip_schemas import (
    INPUT_NAME,
    OUTPUT_NAME,
    InferenceRequest,
    InferenceResponse,
    MetadataTensor,
    ModelMetadata,
    ModelReady,
    ServerLive,
    ServerMetadata,
    ServerReady,
)
from service.api.oip_tensors import BINARY_HEADER, encode_infer, parse_infer
from service.api.openapi import errors, guarded, inline_schema
from service.api.options import check_session_id, check_tta_steps
from service.contracts import ModelInfo, ReconstructRequest
from service.core import InferenceCore
from service.errors import InvalidInputError

router = APIRouter(prefix="/v2", tags=["open inference protocol (v2)"])

MODEL = "/models/{model_name}"
VERSIONED = "/models/{model_name}/versions/{model_version}"


def _server_version() -> str:
    try:
        return importlib.metadata.version("mcga")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _model(core: InferenceCore, name: str, version: str | None) -> ModelInfo:
    info = core.model_info
    if name != info.name or version not in (None, info.version):
        served = f"{info.name!r} version {info.version!r}"
        raise ModelNotFoundError(
            f"no model {name!r}" + (f" version {version!r}" if version else "") + f"; served: {served}"
        )
    return info


_GUARD: dict[str, Any] = {"dependencies": [InferenceDep]}  # health and model readiness stay open (probes)


@router.get("", summary="Server metadata", response_model=ServerMetadata, responses=guarded(), **_GUARD)
async def server_metadata() -> ServerMetadata:
    return ServerMetadata(name="mcga", version=_server_version(), extensions=["binary_tensor_data"])


@router.get("/health/live", summary="Server live", response_model=ServerLive)
async def server_live() -> ServerLive:
    return ServerLive(live=True)


@router.get(
    "/health/ready",
    summary="Server ready",
    response_model=ServerReady,
    responses={503: {"model": ServerReady, "description": "Not ready"}},
)
async def server_ready(ctx: ContextDep) -> JSONResponse:
    ready = ctx.core is not None and (await ctx.core.readiness()).ready
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


@router.get(
    MODEL,
    summary="Model metadata",
    response_model=ModelMetadata,
    response_model_exclude_none=True,
    responses={**errors(404, 503), **guarded()},
    **_GUARD,
)
@router.get(
    VERSIONED,
    summary="Model metadata (one version)",
    response_model=ModelMetadata,
    response_model_exclude_none=True,
    responses={**errors(404, 503), **guarded()},
    **_GUARD,
)
async def model_metadata(core: CoreDep, model_name: str, model_version: str | None = None) -> ModelMetadata:
    info = _model(core, model_name, model_version)
    wavelengths = ",".join(f"{w:g}" for w in info.wavelengths_nm)
    return ModelMetadata(
        name=info.name,
        versions=[info.version],
        platform="pytorch",
        inputs=[
            MetadataTensor(
                name=INPUT_NAME,
                datatype="FP32",
                shape=[-1, -1, 3],
                parameters={"accepted_datatypes": "FP32,FP16,FP64,UINT8,UINT16"},
            )
        ],
        outputs=[
            MetadataTensor(
                name=OUTPUT_NAME,
                datatype="FP32",
                shape=[-1, -1, info.bands],
                parameters={"wavelengths_nm": wavelengths},
            )
        ],
    )


_NOT_READY: dict[int | str, dict[str, Any]] = {503: {"model": ModelReady, "description": "Not ready"}}


@router.get(
    MODEL + "/ready",
    summary="Model ready",
    response_model=ModelReady,
    responses={**errors(404), **_NOT_READY},
)
@router.get(
    VERSIONED + "/ready",
    summary="Model ready (one version)",
    response_model=ModelReady,
    responses={**errors(404), **_NOT_READY},
)
async def model_ready(ctx: ContextDep, model_name: str, model_version: str | None = None) -> JSONResponse:
    ready = ctx.core is not None and (await ctx.core.readiness()).model
    if ctx.core is not None and ready:
        _model(ctx.core, model_name, model_version)
    return JSONResponse({"name": model_name, "ready": ready}, status_code=200 if ready else 503)


_INFER_DOCS: dict[str, Any] = {
    "summary": "Inference: rgb [H, W, 3] in, hsi [H, W, C] FP32 out",
    "response_class": Response,
    "responses": {
        200: {"model": InferenceResponse, "description": "JSON, or JSON + binary tensors (binary extension)"},
        **errors(404, 413, 415, 422, 429, 500, 503, 504),
        **guarded(),
    },
    **_GUARD,
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline_schema(InferenceRequest.model_json_schema())}},
        }
    },
}


@router.post(MODEL + "/infer", **_INFER_DOCS)
@router.post(VERSIONED + "/infer", **_INFER_DOCS)
async def infer(
    request: Request, ctx: ContextDep, core: CoreDep, model_name: str, model_version: str | None = None
) -> Response:
    info = _model(core, model_name, model_version)
    header = request.headers.get(BINARY_HEADER)
    if header is not None and not (header.isascii() and header.isdigit()):  # "²".isdigit() is True
        raise InvalidInputError(f"{BINARY_HEADER} must be a byte count, got {header!r}")
    check_content_encoding(request)
    body = await request.body()
    start = time.perf_counter()
    parsed = await to_thread.run_sync(parse_infer, body, int(header) if header else None, ctx.limits)
    decode_s = time.perf_counter() - start
    del body
    session_id = check_session_id(parsed.session_id or request.headers.get("X-Session-ID"))
    frame = parsed.image
    result = await unless_disconnected(
        request,
        core.reconstruct(
            ReconstructRequest(
                frame.rgb,
                session_id=session_id,
                tta_steps=check_tta_steps(parsed.tta_steps, ctx.settings.max_tta_steps),
                timeout_s=parsed.timeout_s,
            )
        ),
    )
    start = time.perf_counter()
    content, json_length = await to_thread.run_sync(
        encode_infer, result, info.name, parsed.request.id, frame.color, parsed.binary_output
    )
    headers = cube_headers(
        result,
        result.cube.shape,
        result.wavelengths_nm,
        color=frame.color,
        session_id=session_id,
        decode_s=decode_s,
        encode_s=time.perf_counter() - start,
    )
    if json_length is None:
        return Response(content, media_type="application/json", headers=headers)
    headers[BINARY_HEADER] = str(json_length)
    return Response(content, media_type="application/octet-stream", headers=headers)
