"""Prometheus objects of one server instance, in their own registry (tests build several engines).

Names follow Prometheus conventions with an `mcga_` prefix; the front ends expose `registry`.
With `enabled=False` (setting `metrics_enabled`) every metric is a no-op and the registry is empty:
the benchmark suite measures what recording costs against that.
"""

from __future__ import annotations

from typing import Self

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.metrics import MetricWrapperBase

from service.contracts import TTAOutcome
from service.errors import ServiceError

# No `_created` series beside every counter and histogram (about 40 per replica): nothing reads them.
disable_created_metrics()

# Seconds: fine from 0.25 s to 20 s, where frames take on a CPU (0.3-5 s at 256^2-512^2), so that
# quantiles are not interpolated across a factor of 2.5; milliseconds for queue waits and probes.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75,
    1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0,
)  # fmt: skip
_BATCH = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)
# Nats, up to log of the MoC size (~6.3 for the bundled 544 codes). Real frames query at 4.3-4.5 and
# adaptation lowers that by tenths, so 0.1 steps from 3.5 to 5.5 (one wide bucket hid the drift).
_ENTROPY = (1.0, 2.0, 3.0, *(round(3.5 + 0.1 * i, 1) for i in range(21)), 6.0, 6.5, 7.0, 8.0)
_REPROJECTION = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5)


class _Off:
    """Stands in for any Prometheus metric and records nothing."""

    def labels(self, *values: object, **labels: object) -> Self:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def dec(self, amount: float = 1) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, value: float) -> None:
        pass

    def clear(self) -> None:
        pass


def disable_metrics(holder: object) -> None:
    """Replace every Prometheus metric attribute of `holder` by a no-op."""
    off = _Off()
    for name, value in list(vars(holder).items()):
        if isinstance(value, MetricWrapperBase):
            setattr(holder, name, off)


class Metrics:
    """Every metric of the engine, the session store and the core."""

    def __init__(self, registry: CollectorRegistry | None = None, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry if enabled else CollectorRegistry()  # disabled: registered nowhere we expose
        self.queue_depth = Gauge("mcga_queue_depth", "Frames waiting for a batch", registry=r)
        self.batch_size = Histogram("mcga_batch_size", "Frames per forward pass", buckets=_BATCH, registry=r)
        self.queue_seconds = Histogram(
            "mcga_queue_duration_seconds",
            "Time from submission to batch start",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "mcga_inference_duration_seconds", "Worker time of one batch", buckets=LATENCY_BUCKETS, registry=r
        )
        self.tta_seconds = Histogram(
            "mcga_tta_duration_seconds",
            "Adaptation time of the pass that carried each adapting frame",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.request_seconds = Histogram(
            "mcga_request_duration_seconds", "Core time of one request", buckets=LATENCY_BUCKETS, registry=r
        )
        self.requests = Counter("mcga_requests", "Requests by outcome", ["outcome"], registry=r)
        self.dropped = Counter(
            "mcga_queue_dropped", "Queued frames dropped before running", ["reason"], registry=r
        )
        self.tta_steps = Counter("mcga_tta_steps", "Frames by TTA outcome", ["outcome"], registry=r)
        self.tta_entropy = Histogram(
            "mcga_tta_entropy", "Codebook-query entropy of adapting frames", buckets=_ENTROPY, registry=r
        )
        self.session_ops = Counter(
            "mcga_session_store_operations", "Session-store calls by result", ["op", "result"], registry=r
        )
        self.session_errors = Counter(
            "mcga_session_store_errors", "Session-store failures and timeouts", ["op"], registry=r
        )
        self.breaker_open = Gauge(
            "mcga_session_store_breaker_open", "1 while the store's circuit breaker is open", registry=r
        )
        self.reprojection_error = Histogram(
            "mcga_reprojection_error",
            "RMSE between input RGB and the predicted cube projected through the training camera",
            buckets=_REPROJECTION,
            registry=r,
        )
        self.device_memory = Gauge(
            "mcga_device_memory_bytes", "Accelerator memory (CUDA only)", ["kind"], registry=r
        )
        self.model_info = Gauge(
            "mcga_model_info", "Served weights (value 1)", ["version", "device"], registry=r
        )
        if not enabled:
            disable_metrics(self)  # and `registry` stays empty: /metrics serves an empty page
            return
        # Series that exist from the start, at 0, so that `rate()` sees the first queue_full or reset.
        for code in ("ok", *sorted(_error_codes(ServiceError))):
            self.requests.labels(code)
        for outcome in TTAOutcome:
            self.tta_steps.labels(outcome.value)
        for reason in DROP_REASONS:
            self.dropped.labels(reason)


DROP_REASONS = ("queue_full", "cancelled", "deadline", "cancelled_running")


def _error_codes(cls: type[ServiceError]) -> set[str]:
    return {cls.code}.union(*(_error_codes(sub) for sub in cls.__subclasses__()))
