"""`metrics_enabled=False`: every metric a no-op, nothing registered, nothing exposed."""

from __future__ import annotations

from prometheus_client import generate_latest

from service.grpc.status import GrpcMetrics
from service.metrics import Metrics


def test_disabled_metrics_record_nothing_and_expose_nothing() -> None:
    metrics = Metrics(enabled=False)
    metrics.requests.labels("ok").inc()
    metrics.request_seconds.observe(0.1)
    metrics.queue_depth.set(3)
    metrics.model_info.clear()
    metrics.model_info.labels("v", "cpu").set(1)
    assert not metrics.enabled
    assert generate_latest(metrics.registry) == b""


def test_enabled_metrics_still_record() -> None:
    metrics = Metrics()
    metrics.requests.labels("ok").inc()
    assert b'mcga_requests_total{outcome="ok"} 1.0' in generate_latest(metrics.registry)


def test_disabled_grpc_metrics_are_no_ops() -> None:
    metrics = GrpcMetrics.disabled()
    metrics.requests.labels("Reconstruct", "OK").inc()
    metrics.streams.inc()
    metrics.streams.dec()
    metrics.stream_frames.labels("ok").inc()
