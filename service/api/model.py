"""`GET /v1/model` and the admin reload of the served weights."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import AdminDep, CoreDep, InferenceDep
from service.api.openapi import errors, guarded
from service.api.schemas import ModelBody, ReloadBody

router = APIRouter(tags=["model"], dependencies=[InferenceDep], responses=guarded())
admin = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminDep], responses=guarded(admin=True))


@router.get(
    "/v1/model",
    summary="The served model: bands, wavelengths, scales, parameter count, version",
    response_model=ModelBody,
    responses=errors(500, 503),
)
async def get_model(core: CoreDep) -> ModelBody:
    return ModelBody.of(core.model_info)


@admin.post(
    "/reload",
    summary="Swap the weights without dropping requests",
    description="Queued requests run on the new weights; sessions adapted for the old ones reset on "
    "their next frame. A failed load keeps the current weights (422).",
    response_model=ModelBody,
    responses=errors(
        400,
        422,
        500,
        503,
        e400="The body is not JSON",
        e422="The checkpoint cannot be served (unreadable, wrong kind)",
    ),
)
async def reload(core: CoreDep, body: ReloadBody | None = None) -> ModelBody:
    return ModelBody.of(await core.reload(body.weights if body else None))
