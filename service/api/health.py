"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.api.deps import ContextDep
from service.api.openapi import errors
from service.api.schemas import Live, Ready

router = APIRouter(tags=["health"])


# GET and HEAD: some load balancers probe with HEAD (Starlette answers it without a body).
@router.api_route(
    "/healthz", methods=["GET", "HEAD"], summary="Liveness: the process answers", response_model=Live
)
async def healthz() -> Live:
    return Live(status="ok")


@router.api_route(
    "/readyz",
    methods=["GET", "HEAD"],
    summary="Readiness: weights loaded, warm-up done, Redis reachable when configured",
    response_model=Ready,
    responses={
        200: {"description": "Ready to serve"},
        503: {"model": Ready, "description": "Not ready; the body says which part is missing"},
        **errors(500),
    },
)
async def readyz(ctx: ContextDep) -> JSONResponse:
    if ctx.core is None:
        body = Ready(ready=False, model=False, store=None)
    else:
        r = await ctx.core.readiness()
        body = Ready(ready=r.ready, model=r.model, store=r.store)
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)
