"""`POST /reconstruct`: image bytes -> decode (worker thread) -> core -> encode (worker thread) -> cube."""

from __future__ import annotations

import time
from functools import partial
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Depends, Request, Response

from service.api.body import read_image_body, unless_disconnected
from service.api.cube_response import cube_headers, cube_response
from service.api.deps import ContextDep, CoreDep, InferenceDep, RequestIdDep
from service.api.openapi import CUBE_RESPONSE, IMAGE_BODY, errors, guarded
from service.api.options import ReconstructOptions, reconstruct_options
from service.codecs import decode_image, encode_cube_chunks
from service.contracts import ReconstructRequest

router = APIRouter(tags=["reconstruction"], dependencies=[InferenceDep], responses=guarded())

_DESCRIPTION = """\
Reconstruct the hyperspectral cube (H×W×C, C bands at `X-Wavelengths-Nm`) of one RGB frame.

The input is **linear camera RGB** scaled by its bit depth (`color=linear`, the default); send
`color=srgb` for ordinary sRGB-encoded camera JPEGs. With a session (`session_id` or `X-Session-ID`)
the model adapts to the stream frame by frame (`tta_steps` per frame, default from the server);
without one, `tta_steps` > 0 adapts once for this frame only. `bands` and `region` cut the returned
cube; `compression` shrinks a TIFF (a 4K float32 cube is about 1 GB).
"""


@router.post(
    "/reconstruct",
    summary="RGB frame in, hyperspectral cube out",
    description=_DESCRIPTION,
    response_class=Response,
    responses={**CUBE_RESPONSE, **errors(406, 413, 415, 422, 429, 500, 503, 504)},
    openapi_extra=IMAGE_BODY,
)
async def reconstruct(
    request: Request,
    ctx: ContextDep,
    core: CoreDep,
    request_id: RequestIdDep,
    opts: Annotated[ReconstructOptions, Depends(reconstruct_options)],
) -> Response:
    upload = await read_image_body(request)
    start = time.perf_counter()
    decoded = await to_thread.run_sync(
        partial(
            decode_image, upload.data, content_type=upload.content_type, color=opts.color, limits=ctx.limits
        )
    )
    decode_s = time.perf_counter() - start
    del upload
    opts.check_frame(decoded.rgb, core.model_info.wavelengths_nm)
    frame = ReconstructRequest(
        decoded.rgb, session_id=opts.session_id, tta_steps=opts.tta_steps, timeout_s=opts.timeout_s
    )
    result = await unless_disconnected(request, core.reconstruct(frame))
    cube, wavelengths = opts.subset(result.cube, result.wavelengths_nm)
    metadata = {
        "model_version": result.model_version,
        "input_color": decoded.color,
        "input_format": decoded.source_format,
        "tta_outcome": result.tta.value,
        "request_id": request_id,
    }
    start = time.perf_counter()
    encoded = await to_thread.run_sync(
        partial(
            encode_cube_chunks,
            cube,
            wavelengths,
            fmt=opts.fmt,
            dtype=opts.dtype,
            compression=opts.compression,
            metadata=metadata,
        )
    )
    headers = cube_headers(
        result,
        cube.shape,
        wavelengths,
        color=decoded.color,
        session_id=opts.session_id,
        decode_s=decode_s,
        encode_s=time.perf_counter() - start,
    )
    return cube_response(encoded, headers)
