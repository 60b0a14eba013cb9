"""API keys and rate limits on the gRPC edge: a `grpc.aio` server interceptor over `AccessControl`.

Keys travel as `authorization: Bearer KEY` or `x-api-key: KEY` metadata. The health and reflection
services stay open (probes, grpcurl); every `mcga.v1.Reconstruction` method is an inference route.
A refused call ends UNAUTHENTICATED, PERMISSION_DENIED or RESOURCE_EXHAUSTED (with `retry-after-s`)
before its handler runs; a stream is checked once, when it opens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from service.access import Access, AccessControl, presented_key
from service.errors import ServiceError
from service.grpc.status import GrpcMetrics, abort, code_name

OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def access_of(method: str) -> Access:
    return Access.OPEN if method.startswith(OPEN_SERVICES) else Access.INFERENCE


def peer_address(peer: str | None) -> str | None:
    """The address part of a gRPC peer string (`ipv4:1.2.3.4:5678`, `ipv6:[::1]:5678`)."""
    if not peer:
        return None
    kind, _, rest = peer.partition(":")
    if kind == "ipv6" and rest.startswith("["):
        return rest[1:].split("]", 1)[0]
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    return rest or peer


def _metadata_value(metadata: Any, name: str) -> str | None:
    for key, value in metadata or ():
        if key == name:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


class AccessInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, access: AccessControl, metrics: GrpcMetrics) -> None:
        self._access, self._metrics = access, metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        level = access_of(details.method)
        if handler is None or level is Access.OPEN:
            return handler
        metadata = details.invocation_metadata
        key = presented_key(
            _metadata_value(metadata, "authorization"), _metadata_value(metadata, "x-api-key")
        )
        method = details.method.rsplit("/", 1)[-1]

        async def check(context: grpc.aio.ServicerContext) -> None:
            try:
                self._access.check(level, key, peer_address(context.peer()))
            except ServiceError as exc:
                self._metrics.requests.labels(method, code_name(exc)).inc()
                await abort(context, exc, method)

        return _guarded(handler, check)


def _guarded(
    handler: grpc.RpcMethodHandler, check: Callable[[grpc.aio.ServicerContext], Awaitable[None]]
) -> grpc.RpcMethodHandler:
    """`handler` with `check` run first, whatever its kind."""
    codecs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await check(context)
            return await inner_uu(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, **codecs)
    if handler.stream_unary is not None:
        inner_su = handler.stream_unary

        async def stream_unary(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
            await check(context)
            return await inner_su(requests, context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, **codecs)
    inner_stream = handler.unary_stream or handler.stream_stream
    make = (
        grpc.unary_stream_rpc_method_handler
        if handler.unary_stream is not None
        else grpc.stream_stream_rpc_method_handler
    )

    async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await check(context)
        async for response in inner_stream(request, context):
            yield response

    return make(streaming, **codecs)
