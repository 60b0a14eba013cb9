"""HTTP request metrics (by route template, never by raw path), on the core's registry."""

from __future__ import annotations

import time
from typing import ClassVar
from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import LATENCY_BUCKETS

UNMATCHED = "unmatched"  # the route label of requests no route matched (bounded cardinality)
# Methods as labels: the standard ones, every other token a client sends as "other" (bounded).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


def method_label(method: str) -> str:
    return method if method in _METHODS else "other"


def status_class(status: int) -> str:
    """ "2xx" ... "5xx": fast refusals (a 429 in milliseconds) kept apart from served frames."""
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


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
            "HTTP request time until the last body byte is sent, by route template and status class",
            ["route", "status_class"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


def route_template(scope: Scope) -> str:
    """The path template of the route that served the request: FastAPI's routes name themselves in
    the scope; plain Starlette routes (/docs, /openapi.json) only leave their endpoint there."""
    route = scope.get("route")
    if route is not None and getattr(route, "path", None):
        return str(route.path)
    endpoint, app = scope.get("endpoint"), scope.get("app")
    if endpoint is not None and app is not None:
        for candidate in getattr(app, "routes", ()):
            if getattr(candidate, "endpoint", None) is endpoint and getattr(candidate, "path", None):
                return str(candidate.path)
    return UNMATCHED


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
            route = route_template(scope)
            self.metrics.requests.labels(route, method_label(scope["method"]), str(status)).inc()
            self.metrics.seconds.labels(route, status_class(status)).observe(time.perf_counter() - start)
