"""`create_app`: the REST edge around one shared `InferenceCore`.

Settings are built here (never at import time). Without a core the lifespan builds, starts and stops
one; with a core the caller owns it (the process entry point shares it with the gRPC edge).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.access import AccessControl
from service.api import health, metrics, model, reconstruct, sessions, v2
from service.api.deps import AppContext
from service.api.errors import install_error_handlers
from service.api.instrumentation import HttpMetrics, MetricsMiddleware
from service.api.middleware import BodyLimitMiddleware, RequestIdMiddleware
from service.core import InferenceCore
from service.metrics import Metrics
from service.settings import Settings

_DESCRIPTION = """\
RGB frames in, hyperspectral cubes (31 bands, 400-700 nm) out.

`POST /reconstruct` takes one image (PNG, JPEG, TIFF at 8 or 16 bits, or an H×W×3 `.npy`), raw or
multipart, and returns the cube as OME-TIFF (band wavelengths in the metadata; Fiji, napari and
tifffile read them) or `.npy`, with headers for shape, wavelengths, model version, test-time
adaptation and timings. Sessions (`X-Session-ID`) adapt the model to a stream. The Open Inference
Protocol (KServe v2) lives under `/v2`. Every error is JSON: `{"error": code, "message": ...}`.
Servers that set API keys want `Authorization: Bearer KEY` (or `X-API-Key: KEY`) on every route
but the probes; rate-limited clients get 429 with `Retry-After`.
"""

_TAGS = [
    {"name": "reconstruction", "description": "RGB to hyperspectral"},
    {"name": "sessions", "description": "Per-stream test-time adaptation state"},
    {"name": "model", "description": "The served weights"},
    {"name": "health", "description": "Probes for load balancers and Kubernetes"},
    {"name": "metrics", "description": "Prometheus"},
    {"name": "open inference protocol (v2)", "description": "KServe / Triton compatible surface"},
    {"name": "admin", "description": "Operations: an admin key once the server sets any API key"},
]


def create_app(
    settings: Settings | None = None,
    core: InferenceCore | None = None,
    access: AccessControl | None = None,
) -> FastAPI:
    """The FastAPI app. `settings` default to the core's, else to the environment's (`MCGA_*`);
    `access` (keys, rate limit) to one built from the settings (`serve` shares one with gRPC)."""
    if settings is None:
        settings = core.settings if core is not None else Settings()
    recorder = core.metrics if core is not None else Metrics(enabled=settings.metrics_enabled)
    access = access or AccessControl.from_settings(settings)
    ctx = AppContext(settings=settings, metrics=recorder, access=access, core=core)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if core is not None:  # the caller's: started and stopped by the caller
            yield
            return
        own = InferenceCore.build(settings, ctx.metrics)
        await own.start()
        ctx.core = own
        try:
            yield
        finally:
            ctx.core = None
            await own.stop()

    app = FastAPI(
        title="MCGA hyperspectral reconstruction",
        version="1",
        description=_DESCRIPTION,
        openapi_tags=_TAGS,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    for module in (reconstruct, sessions, model, health, metrics, v2):
        app.include_router(module.router)
    app.include_router(model.admin)
    # Added innermost first: metrics see every final status, request ids reach every response.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    if recorder.enabled:
        app.add_middleware(MetricsMiddleware, metrics=HttpMetrics.on(recorder.registry))
    return app
