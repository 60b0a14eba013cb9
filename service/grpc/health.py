"""The standard gRPC health service, answering from the core's readiness.

SERVING while the core is ready (weights loaded and warmed up, Redis reachable when required),
NOT_SERVING otherwise, for the overall server ("") and for `mcga.v1.Reconstruction`. Each Check
asks the core (at most every `refresh_s`); Watch polls and sends each change. Once the server drains,
every service stays NOT_SERVING.
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

from service.core import InferenceCore

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ReadinessHealth(health_aio.HealthServicer):
    def __init__(self, core: InferenceCore, services: tuple[str, ...], refresh_s: float = 0.5) -> None:
        super().__init__()
        self._core, self._services, self._refresh_s = core, ("", *services), refresh_s
        self._checked = -float("inf")
        self._draining = False
        for name in self._services:
            self._server_status[name] = NOT_SERVING

    async def refresh(self) -> None:
        """Ask the core for its readiness (unless asked within `refresh_s`) and record it."""
        now = time.monotonic()
        if self._draining or now - self._checked < self._refresh_s:
            return
        self._checked = now
        try:
            ready = (await self._core.readiness()).ready
        except Exception:
            log.exception("readiness check failed")
            ready = False
        for name in self._services:
            await self.set(name, SERVING if ready else NOT_SERVING)

    async def drain(self) -> None:
        self._draining = True
        await self.enter_graceful_shutdown()

    async def Check(  # noqa: N802 (the gRPC method name)
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        await self.refresh()
        return await super().Check(request, context)

    async def Watch(  # noqa: N802
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> None:
        last = None
        while True:
            await self.refresh()
            status = self._server_status.get(request.service, health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
            if status != last:
                await context.write(health_pb2.HealthCheckResponse(status=status))
                last = status
            await asyncio.sleep(self._refresh_s)
