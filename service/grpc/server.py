"""The gRPC edge: `mcga.v1.Reconstruction` over the shared inference core, plus the standard health
and reflection services, on one `grpc.aio` server in the process's event loop.

Handlers are thin: decode (off the loop) -> core -> encode (off the loop). Errors are translated
once, in `status.abort`. Message limits come from settings; a client must raise its own receive
limit (gRPC's default is 4 MB) to take whole cubes, or stream them in chunks. TLS comes from the
certificate settings; API keys and rate limits from `service.grpc.access` (installed only when set).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from service.access import AccessControl
from service.contracts import ReconstructRequest
from service.core import SESSION_ID, InferenceCore
from service.errors import DeadlineExceededError, InvalidInputError, NotReadyError
from service.grpc import convert
from service.grpc.access import AccessInterceptor
from service.grpc.gen.mcga.v1 import reconstruction_pb2 as pb
from service.grpc.gen.mcga.v1 import reconstruction_pb2_grpc as pb_grpc
from service.grpc.health import ReadinessHealth
from service.grpc.status import GrpcMetrics, abort, code_name, grpc_metrics
from service.grpc.stream import FrameStream, StreamPlan
from service.settings import Settings

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["Reconstruction"].full_name
REALTIME_WINDOW = 2  # real-time streams keep latency low: one frame running, one being decoded
T = TypeVar("T")


def _remaining(context: grpc.aio.ServicerContext, when: str) -> float | None:
    """Seconds left of the call's deadline (None without one); DEADLINE_EXCEEDED once none are left,
    never a timeout of 0 for the core to refuse as invalid input."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise DeadlineExceededError(f"the call's deadline passed {when}")
    return remaining


class ReconstructionService(pb_grpc.ReconstructionServicer):
    def __init__(self, core: InferenceCore, settings: Settings, metrics: GrpcMetrics) -> None:
        self._core, self._settings, self._metrics = core, settings, metrics
        self._limits = convert.decode_limits(settings)
        self._streams: set[FrameStream] = set()
        self._draining = False

    def drain(self) -> None:
        """Stop reading new frames on every open stream; frames already read are still answered."""
        self._draining = True
        for stream in list(self._streams):
            stream.stop_reading()

    async def _guard(self, method: str, context: grpc.aio.ServicerContext, work: Awaitable[T]) -> T:
        try:
            out = await work
        except asyncio.CancelledError:
            self._metrics.requests.labels(method, "CANCELLED").inc()
            raise
        except Exception as exc:
            self._metrics.requests.labels(method, code_name(exc)).inc()
            await abort(context, exc, method)
        self._metrics.requests.labels(method, "OK").inc()
        return out

    async def Reconstruct(  # noqa: N802 (gRPC method names)
        self, request: pb.ReconstructRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReconstructResponse:
        return await self._guard("Reconstruct", context, self._reconstruct(request, context))

    async def _reconstruct(
        self, request: pb.ReconstructRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReconstructResponse:
        spec = convert.output_spec(request.output, self._core.model_info.wavelengths_nm)
        _remaining(context, "before the frame was decoded")
        rgb = await asyncio.to_thread(convert.decode_frame, request.image, self._limits)
        result = await self._core.reconstruct(
            ReconstructRequest(
                rgb,
                session_id=request.session_id or None,
                tta_steps=request.tta_steps if request.HasField("tta_steps") else None,
                timeout_s=_remaining(context, "while the frame was decoded"),
            )
        )
        max_bytes = self._settings.grpc_max_message_bytes
        return await asyncio.to_thread(convert.unary_response, result, spec, max_bytes)

    async def GetModel(  # noqa: N802
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        async def info() -> pb.ModelInfo:
            return convert.model_info(self._core.model_info)

        return await self._guard("GetModel", context, info())

    async def StreamReconstruct(  # noqa: N802
        self, request_iterator: AsyncIterator[pb.StreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamResponse]:
        method, code = "StreamReconstruct", "OK"
        self._metrics.streams.inc()
        try:
            plan = await self._plan(request_iterator)
            if plan is None:  # the client closed without sending anything
                return
            await context.send_initial_metadata((("session-id", plan.session_id),))
            stream = FrameStream(self._core, plan, self._limits, self._metrics, request_iterator)
            self._streams.add(stream)
            if self._draining:
                stream.stop_reading()
            try:
                async for message in stream.responses():
                    yield message
            finally:
                self._streams.discard(stream)
            if stream.stopped_reading:
                raise NotReadyError(
                    f"the server is shutting down: the stream's first {stream.frames_read} frames were read "
                    f"and answered; reconnect to send the rest (session {plan.session_id!r} is kept)"
                )
        except (asyncio.CancelledError, GeneratorExit):
            code = "CANCELLED"
            raise
        except Exception as exc:
            code = code_name(exc)
            await abort(context, exc, method)
        finally:
            self._metrics.streams.dec()
            self._metrics.requests.labels(method, code).inc()

    async def _plan(self, requests: AsyncIterator[pb.StreamRequest]) -> StreamPlan | None:
        try:
            first = await anext(requests)
        except StopAsyncIteration:
            return None
        if first.WhichOneof("message") != "config":
            raise InvalidInputError("the first message of a stream must be a StreamConfig; then frames")
        cfg, s = first.config, self._settings
        if cfg.session_id and not SESSION_ID.fullmatch(cfg.session_id):
            raise InvalidInputError("session_id must be 1-128 characters of A-Z a-z 0-9 . _ : -")
        output = convert.output_spec(cfg.output, self._core.model_info.wavelengths_nm)
        max_lag = cfg.max_lag_frames or s.stream_max_lag_frames
        session_id = cfg.session_id or f"stream-{uuid.uuid4().hex}"
        return StreamPlan(
            session_id=session_id,
            # `adapt`: the stream adapts its session; otherwise a client's session is used as it stands.
            core_session=session_id if cfg.adapt else cfg.session_id or None,
            tta_steps=None if cfg.adapt else 0,
            output=output,
            chunk_bytes=convert.chunk_size(output, s),
            max_lag=max_lag,
            window=REALTIME_WINDOW if max_lag else max(2, s.max_batch),
        )


@dataclass
class GrpcEdge:
    """The server and the parts `serve` needs to drain it."""

    server: grpc.aio.Server
    port: int
    service: ReconstructionService
    health: ReadinessHealth

    async def start(self) -> None:
        await self.server.start()

    async def stop(self, grace_s: float) -> None:
        """Report NOT_SERVING, stop reading stream frames, refuse new calls, finish running ones."""
        self.service.drain()
        await self.health.drain()
        await self.server.stop(grace_s)


def server_options(settings: Settings) -> list[tuple[str, int]]:
    return [
        ("grpc.max_send_message_length", settings.grpc_max_message_bytes),
        ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
        ("grpc.so_reuseport", 0),  # a taken port is an error, never silently shared
    ]


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS from the certificate files (and mTLS with a client CA); None without them."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    ca = settings.tls_client_ca_file.read_bytes() if settings.tls_client_ca_file else None
    pair = (settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())
    return grpc.ssl_server_credentials([pair], root_certificates=ca, require_client_auth=ca is not None)


def build_grpc_edge(
    core: InferenceCore,
    settings: Settings,
    address: str | None = None,
    access: AccessControl | None = None,
) -> GrpcEdge:
    """A bound, not yet started server (port 0 in settings: a free one, see `GrpcEdge.port`), with
    TLS and access control as the settings say (`access`: shared with the REST edge)."""
    metrics = grpc_metrics(core.metrics.registry) if core.metrics.enabled else GrpcMetrics.disabled()
    access = access or AccessControl.from_settings(settings)
    interceptors = [AccessInterceptor(access, metrics)] if access.active else []
    server = grpc.aio.server(options=server_options(settings), interceptors=interceptors)
    service = ReconstructionService(core, settings, metrics)
    pb_grpc.add_ReconstructionServicer_to_server(service, server)
    health = ReadinessHealth(core, (SERVICE_NAME,))
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    names = (
        SERVICE_NAME,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(names, server)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    target = address or f"{host}:{settings.grpc_port}"
    credentials = server_credentials(settings)
    port = (
        server.add_secure_port(target, credentials)
        if credentials is not None
        else server.add_insecure_port(target)
    )
    return GrpcEdge(server, port, service, health)


def build_grpc_server(core: InferenceCore, settings: Settings) -> grpc.aio.Server:
    """The gRPC server for `core`, bound to `settings.host:grpc_port`; the caller starts and stops it."""
    return build_grpc_edge(core, settings).server
