"""Errors -> gRPC status, in one place, and the gRPC edge's own metrics.

A `ServiceError` becomes its `grpc_code` with its message; its machine-readable code travels in the
trailing metadata `error-code`, and an overload (RESOURCE_EXHAUSTED) adds `retry-after-s`. Anything
else is a bug: logged with a request id, answered INTERNAL with that id and nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from typing import NoReturn

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge

from service.errors import RetryLaterError, ServiceError
from service.metrics import disable_metrics

log = logging.getLogger(__name__)

Metadata = tuple[tuple[str, str], ...]


def status_of(exc: ServiceError) -> tuple[grpc.StatusCode, str, Metadata]:
    """The status code, details and trailing metadata a client sees for `exc`."""
    code = getattr(grpc.StatusCode, exc.grpc_code, grpc.StatusCode.INTERNAL)
    metadata: list[tuple[str, str]] = [("error-code", exc.code)]
    if isinstance(exc, RetryLaterError) or code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        retry = float(getattr(exc, "retry_after_s", exc.details.get("retry_after_s", 1.0)))
        metadata.append(("retry-after-s", f"{retry:.3f}"))
    return code, exc.message, tuple(metadata)


async def abort(context: grpc.aio.ServicerContext, exc: BaseException, method: str) -> NoReturn:
    """End the call with the status for `exc` (never a traceback)."""
    if isinstance(exc, ServiceError):
        code, details, metadata = status_of(exc)
        if code is grpc.StatusCode.INTERNAL:
            log.error("%s failed: %s (%s)", method, exc.code, exc.message)
        await _end(context, code, details, metadata)
    request_id = uuid.uuid4().hex[:16]
    log.error("%s failed (request id %s)", method, request_id, exc_info=exc)
    await _end(
        context,
        grpc.StatusCode.INTERNAL,
        f"internal error (request id {request_id})",
        (("error-code", "internal"), ("request-id", request_id)),
    )


async def _end(
    context: grpc.aio.ServicerContext, code: grpc.StatusCode, details: str, md: Metadata
) -> NoReturn:
    try:
        await context.abort(code, details, md)
    except grpc.aio.AbortError:
        raise
    except Exception as exc:
        # The call had already ended (its deadline, or the client, came first), so grpcio cannot send
        # the status; ending as cancelled keeps its ~45-line traceback out of the log (a client's
        # deadline close to the work's time made one in ~75 calls).
        log.info("call ended before its status %s could be sent", code.name)
        raise asyncio.CancelledError from exc
    raise AssertionError("context.abort returned")  # pragma: no cover


class GrpcMetrics:
    """The gRPC edge's Prometheus objects, registered once per registry (the core's)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "mcga_grpc_requests",
            "gRPC calls by method and status code",
            ["method", "code"],
            registry=registry,
        )
        self.streams = Gauge("mcga_grpc_streams_active", "Open StreamReconstruct calls", registry=registry)
        self.stream_frames = Counter(
            "mcga_stream_frames",
            "Stream frames by outcome: ok, error (FrameError), skipped (real-time lag above max_lag_frames)",
            ["outcome"],
            registry=registry,
        )

    @classmethod
    def disabled(cls) -> GrpcMetrics:
        """Records nothing (setting `metrics_enabled` off)."""
        metrics = cls(CollectorRegistry())
        disable_metrics(metrics)
        return metrics


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, GrpcMetrics] = weakref.WeakKeyDictionary()


def grpc_metrics(registry: CollectorRegistry) -> GrpcMetrics:
    """The registry's gRPC metrics (several servers over one core share them)."""
    metrics = _BY_REGISTRY.get(registry)
    if metrics is None:
        metrics = _BY_REGISTRY[registry] = GrpcMetrics(registry)
    return metrics


def code_name(exc: BaseException | None) -> str:
    """The status code name a call ended with, for the request counter."""
    if exc is None:
        return "OK"
    if isinstance(exc, ServiceError):
        return status_of(exc)[0].name
    return "INTERNAL"
