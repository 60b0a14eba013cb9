"""`metrics_enabled=False`: every metric a no-op, nothing registered, nothing exposed; enabled: known
outcomes exist from the start."""

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


def test_enabled_metrics_start_every_known_outcome_at_zero_and_no_created_series() -> None:
    """So that `rate()` sees the first queue_full, drop or reset (a series born at 1 has no increase)."""
    text = generate_latest(Metrics().registry).decode()
    for series in (
        'mcga_requests_total{outcome="queue_full"} 0.0',
        'mcga_requests_total{outcome="internal"} 0.0',
        'mcga_tta_steps_total{outcome="reset"} 0.0',
        'mcga_queue_dropped_total{reason="deadline"} 0.0',
    ):
        assert series in text, series
    assert "_created" not in text


def test_disabled_grpc_metrics_are_no_ops() -> None:
    metrics = GrpcMetrics.disabled()
    metrics.requests.labels("Reconstruct", "OK").inc()
    metrics.streams.inc()
    metrics.streams.dec()
    metrics.stream_frames.labels("ok").inc()
