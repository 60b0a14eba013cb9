"""`GET|DELETE /sessions/{session_id}`: inspect or reset one stream's test-time adaptation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from service.api.deps import AdminDep, CoreDep, InferenceDep
from service.api.openapi import errors, guarded
from service.api.schemas import SessionBody, SessionDeleted

router = APIRouter(prefix="/sessions", tags=["sessions"])

SessionId = Annotated[str, Path(description="1-128 characters of A-Z a-z 0-9 . _ : -", examples=["cam-1"])]


@router.get(
    "/{session_id}",
    summary="A session's adaptation state",
    response_model=SessionBody,
    dependencies=[InferenceDep],
    responses={
        **errors(404, 422, 500, 503, e404="No such session (never used, expired, or deleted)"),
        **guarded(),
    },
)
async def get_session(session_id: SessionId, core: CoreDep) -> SessionBody:
    return SessionBody.of(await core.session_info(session_id))


@router.delete(
    "/{session_id}",
    summary="Reset a session: its next frame starts from the trained parameters",
    description="Idempotent: `deleted` is false when there was nothing to reset. Afterwards "
    "`GET /sessions/{id}` answers 404 until the session's next frame creates it again (step 1).",
    response_model=SessionDeleted,
    dependencies=[AdminDep],
    responses={**errors(422, 500, 503), **guarded(admin=True)},
)
async def delete_session(session_id: SessionId, core: CoreDep) -> SessionDeleted:
    return SessionDeleted(id=session_id, deleted=await core.reset_session(session_id))
