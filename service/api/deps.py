"""What handlers receive: the app's context (settings, limits, the core) as `Annotated` dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.access import Access, AccessControl, presented_key
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
    access: AccessControl
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


# The two ways to send a key, as OpenAPI security schemes (parameters of the guards below, for the
# documentation); the guards read the headers the same way the gRPC edge reads its metadata.
_BEARER = HTTPBearer(auto_error=False, description="`Authorization: Bearer KEY` (when keys are set)")
_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: KEY` (same keys)")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]
HeaderKeyDep = Annotated[str | None, Security(_HEADER)]


def _guard(request: Request, access: Access) -> None:
    key = presented_key(request.headers.get("authorization"), request.headers.get("x-api-key"))
    get_context(request).access.check(access, key, request.client.host if request.client else None)


async def require_inference(request: Request, _bearer: BearerDep, _key: HeaderKeyDep) -> None:
    """Guard of inference routes: a key when `api_keys` is set, and the rate limit."""
    _guard(request, Access.INFERENCE)


async def require_admin(request: Request, _bearer: BearerDep, _key: HeaderKeyDep) -> None:
    """Guard of `/admin/*` and session deletion: an admin key once any key is set, and the rate limit."""
    _guard(request, Access.ADMIN)


async def require_metrics(request: Request, _bearer: BearerDep, _key: HeaderKeyDep) -> None:
    """Guard of `/metrics`: any configured key when `metrics_require_key`, else open."""
    _guard(request, Access.METRICS)


ContextDep = Annotated[AppContext, Depends(get_context)]
CoreDep = Annotated[InferenceCore, Depends(get_core)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
AdminDep = Depends(require_admin)
InferenceDep = Depends(require_inference)
MetricsDep = Depends(require_metrics)
