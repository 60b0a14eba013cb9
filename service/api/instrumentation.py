"""HTTP request metrics (by route template, never by raw path), on the core's registry."""

from __future__ import annotations

import time
from typing import ClassVar
from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UNMATCHED = "unmatched"  # the route label of requests no route matched (bounded cardinality)


class HttpMetrics:
    requests: Counter
    seconds: Histogram

    _by_registry: ClassVar[WeakKeyDictionary[CollectorRegistry, HttpMetrics]] = WeakKeyDictionary()

    @classmethod
    def on(cls, registry: CollectorRegistry) -> HttpMetrics:
        """The HTTP metrics of `registry`, registered on first use (one core may back several apps)."""
        found = cls._by_registry.get(registry)
        if found is None:
            found = cls._by_registry[registry] = cls(registry)
        return found

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "mcga_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.seconds = Histogram(
            "mcga_http_request_duration_seconds",
            "HTTP request time until the last body byte is sent",
            ["route"],
            buckets=_LATENCY,
            registry=registry,
        )


class MetricsMiddleware:
    """Counts and times every HTTP request by the template of the route that served it."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.seconds.labels(route).observe(time.perf_counter() - start)
