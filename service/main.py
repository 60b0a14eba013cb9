"""`mcga serve`: one process, one event loop, REST (uvicorn) and gRPC over one inference core.

Start: settings (command-line over `MCGA_*` environment) -> API keys read (unusable ones stop the
start) -> the core loads and warms up -> gRPC and HTTP bind (TLS on both when a certificate is
set; one access control, so rate limits span both) -> one log line with the bound addresses.
Stop (SIGTERM, or SIGINT / Ctrl+C): gRPC health turns NOT_SERVING, both edges stop accepting,
running calls finish within the drain timeout (streams answer the frames already read, then end
UNAVAILABLE), then the core drains its queue, writes back session steps kept locally during a
Redis outage and closes the session store; exit code 0. A second SIGINT stops at once (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from pydantic import ValidationError

from service.access import AccessControl
from service.core import InferenceCore
from service.engine import keep_freed_memory
from service.errors import ServiceError
from service.grpc.server import GrpcEdge, build_grpc_edge
from service.settings import Settings, unknown_variables

log = logging.getLogger("mcga.serve")

DRAIN_CAP_S = 25.0  # within Kubernetes' default 30 s termination grace period
CLI_OVERRIDES = ("host", "http_port", "grpc_port")
AppFactory = Callable[[Settings, InferenceCore, AccessControl], Any]  # service.api.create_app


def build_settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with the command line's non-None values on top."""
    overrides: dict[str, Any] = {
        name: value for name in CLI_OVERRIDES if (value := getattr(args, name, None)) is not None
    }
    return Settings(**overrides)


def drain_timeout_s(settings: Settings) -> float:
    return min(settings.request_timeout_s, DRAIN_CAP_S)


def http_config(settings: Settings, app: Any) -> uvicorn.Config:
    """uvicorn's configuration of the REST edge: address, drain time and TLS (mTLS with a client CA)."""
    tls: dict[str, Any] = {}
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        tls = {"ssl_certfile": str(settings.tls_cert_file), "ssl_keyfile": str(settings.tls_key_file)}
        if settings.tls_client_ca_file is not None:
            tls |= {"ssl_ca_certs": str(settings.tls_client_ca_file), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    # Client addresses (rate limits, logs) come from forwarding headers only when a trusted proxy sent
    # them; uvicorn's default believes any local peer, so a local process could pose as any client.
    proxies = settings.forwarded_allow_ips.strip()
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.http_port,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
        log_config=None,  # the process's logging configuration applies
        timeout_graceful_shutdown=int(drain_timeout_s(settings)) or 1,
        **tls,
    )


class HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: `run` owns SIGTERM/SIGINT for both edges."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve_http(server: HttpServer) -> None:
    try:
        await server.serve()
    except SystemExit as exc:  # uvicorn exits when it cannot bind or the app's lifespan fails
        raise RuntimeError(f"the HTTP server stopped during start-up (exit code {exc.code})") from None


class _Signals:
    """The first SIGTERM or SIGINT drains; a second SIGINT (Ctrl+C again) stops at once."""

    def __init__(self) -> None:
        self.stop, self.force = asyncio.Event(), asyncio.Event()
        self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, self._received, sig)

    def _received(self, sig: signal.Signals) -> None:
        if not self.stop.is_set():
            log.info("%s: draining", sig.name)
            self.stop.set()
        elif sig == signal.SIGINT:
            log.warning("SIGINT again: stopping without draining")
            self.force.set()
        else:
            log.info("%s again: still draining (SIGINT stops at once)", sig.name)

    def close(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.remove_signal_handler(sig)


def bound_port(server: HttpServer) -> int:
    for listener in getattr(server, "servers", []):
        for sock in listener.sockets:
            return int(sock.getsockname()[1])
    return 0


async def _wait_first(*aws: asyncio.Future[Any] | asyncio.Task[Any]) -> None:
    await asyncio.wait(aws, return_when=asyncio.FIRST_COMPLETED)


async def run(settings: Settings, create_app: AppFactory) -> int:
    """Serve until a signal; 0 after a clean drain, 1 when start-up fails or the stop was forced."""
    signals = _Signals()
    core = InferenceCore.build(settings)
    edge: GrpcEdge | None = None
    http: HttpServer | None = None
    http_task: asyncio.Task[None] | None = None
    code = 0
    try:
        access = AccessControl.from_settings(settings)  # unusable keys stop the start here
        await core.start()
        edge = build_grpc_edge(core, settings, access=access)
        await edge.start()
        http = HttpServer(http_config(settings, create_app(settings, core, access)))
        http_task = asyncio.create_task(_serve_http(http), name="mcga-http")
        while not http.started and not http_task.done():
            await asyncio.sleep(0.02)
        if http_task.done():
            http_task.result()
        log.info(
            "serving %s: REST on %s://%s:%d, gRPC on %s:%d%s",
            core.model_info.version,
            "https" if settings.tls else "http",
            settings.host,
            bound_port(http),
            settings.host,
            edge.port,
            " (TLS)" if settings.tls else "",
        )
        stop = asyncio.ensure_future(signals.stop.wait())
        await _wait_first(stop, http_task)
        stop.cancel()
        if http_task.done() and not signals.stop.is_set():
            http_task.result()
            raise RuntimeError("the HTTP server stopped on its own")
    except (ServiceError, RuntimeError, OSError) as exc:
        log.error("mcga serve failed: %s", exc)
        code = 1
    finally:
        forced = await _shutdown(core, edge, http, http_task, signals, drain_timeout_s(settings))
        signals.close()
    return 1 if forced else code


async def _shutdown(
    core: InferenceCore,
    edge: GrpcEdge | None,
    http: HttpServer | None,
    http_task: asyncio.Task[None] | None,
    signals: _Signals,
    drain_s: float,
) -> bool:
    """Drain both edges, then the core; True when a second signal cut it short."""
    log.info("shutting down: finishing running calls for up to %.0f s", drain_s)
    if http is not None:
        http.should_exit = True

    async def drain() -> None:
        # One budget for both phases: what the edges used is gone for the core (two full budgets
        # back to back outlasted the 30-40 s a container gets between SIGTERM and SIGKILL).
        deadline = time.monotonic() + drain_s
        edges: list[Any] = [edge.stop(drain_s)] if edge is not None else []
        if http_task is not None:
            edges.append(http_task)
        await asyncio.gather(*edges, return_exceptions=True)
        await core.stop(max(0.0, deadline - time.monotonic()))

    draining = asyncio.ensure_future(drain())
    force = asyncio.ensure_future(signals.force.wait())
    await _wait_first(draining, force)
    force.cancel()
    if draining.done():
        draining.result()
        log.info("stopped")
        return False
    draining.cancel()
    await asyncio.gather(draining, return_exceptions=True)
    if http is not None:
        http.force_exit = True
    if edge is not None:
        await edge.server.stop(0)
    await core.stop(0)
    return True


def serve(args: argparse.Namespace) -> int:
    """The `mcga serve` command."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    keep_freed_memory()  # glibc trimming freed activations doubled 512^2 latency (model/runtime.py)
    try:
        settings = build_settings(args)
    except ValidationError as exc:
        log.error("invalid settings:\n%s", exc)
        return 2
    for name in unknown_variables(os.environ):
        log.warning("environment variable %s is not a setting: ignored", name)
    try:
        from service.api import create_app  # the REST edge, imported here so the gRPC side stands alone
    except ImportError:
        log.exception("the REST edge (service.api) cannot be imported")
        return 2
    return asyncio.run(run(settings, create_app))
