"""`GET /metrics`: the core's registry (engine, sessions, TTA, HTTP) in Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.deps import ContextDep, MetricsDep
from service.api.openapi import errors

router = APIRouter(tags=["metrics"], dependencies=[MetricsDep], responses=errors(401))


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text exposition", "content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(ctx: ContextDep) -> Response:  # a plain def: FastAPI runs it off the event loop
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
