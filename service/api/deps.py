"""What handlers receive: the app's context (settings, limits, the core) as `Annotated` dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from service.codecs import DecodeLimits
from service.core import InferenceCore
from service.errors import NotReadyError
from service.metrics import Metrics
from service.settings import Settings


@dataclass
class AppContext:
    """Per-app state, on `app.state.ctx`; `core` is None until the lifespan has started one."""

    settings: Settings
    metrics: Metrics
    core: InferenceCore | None = None

    @property
    def limits(self) -> DecodeLimits:
        s = self.settings
        return DecodeLimits(
            max_bytes=s.max_body_bytes, max_pixels=s.max_image_pixels, max_side=s.max_image_side
        )


def get_context(request: Request) -> AppContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, AppContext)
    return ctx


def get_core(ctx: Annotated[AppContext, Depends(get_context)]) -> InferenceCore:
    if ctx.core is None:
        raise NotReadyError("the server is starting; the model is not loaded yet")
    return ctx.core


def get_settings(ctx: Annotated[AppContext, Depends(get_context)]) -> Settings:
    return ctx.settings


def get_request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


async def require_admin() -> None:
    """Guard of `/admin/*` and session deletion. Open for now: authentication is a later issue,
    and it goes here, so every protected route picks it up at once."""


ContextDep = Annotated[AppContext, Depends(get_context)]
CoreDep = Annotated[InferenceCore, Depends(get_core)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
AdminDep = Depends(require_admin)
