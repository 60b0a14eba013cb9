"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.api.deps import ContextDep
from service.api.openapi import errors
from service.api.schemas import Live, Ready

router = APIRouter(tags=["health"])


# GET and HEAD: some load balancers probe with HEAD (answered without a body). One route a method,
# so that each has its own OpenAPI operation id.
@router.get("/healthz", summary="Liveness: the process answers", response_model=Live)
@router.head("/healthz", summary="Liveness (HEAD)", response_model=Live)
async def healthz() -> Live:
    return Live(status="ok")


_READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Ready to serve"},
    503: {"model": Ready, "description": "Not ready; the body says which part is missing"},
    **errors(500),
}


@router.get(
    "/readyz",
    summary="Readiness: weights loaded, warm-up done, Redis reachable when configured",
    response_model=Ready,
    responses=_READY_RESPONSES,
)
@router.head(
    "/readyz",
    summary="Readiness (HEAD)",
    response_model=Ready,
    responses=_READY_RESPONSES,
)
async def readyz(ctx: ContextDep) -> JSONResponse:
    if ctx.core is None:
        body = Ready(ready=False, model=False, store=None)
    else:
        r = await ctx.core.readiness()
        body = Ready(ready=r.ready, model=r.model, store=r.store)
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)
