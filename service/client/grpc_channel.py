"""Channels of the gRPC clients (message limits, TLS, API key) and their errors as `ClientError`s."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc

from service.client.errors import ClientError
from service.client.grpc_convert import metadata_value

CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
)


def client_error(exc: grpc.RpcError) -> ClientError:
    """A failed call as a ClientError (status name, the service's error code, retry hint)."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    retry = metadata_value(trailing, "retry-after-s")
    return ClientError(
        (exc.details() if hasattr(exc, "details") else None) or str(exc),
        status=code.name,
        code=metadata_value(trailing, "error-code") or code.name.lower(),
        retry_after_s=float(retry) if retry else None,
        request_id=metadata_value(trailing, "request-id"),
    )


Metadata = tuple[tuple[str, str], ...]


def open_channel(
    target: str,
    options: Iterable[tuple[str, Any]],
    *,
    api_key: str | None,
    tls: bool,
    root_certificates: bytes | None,
    aio: bool,
) -> tuple[Any, Metadata]:
    """A channel (`grpc` or `grpc.aio`), TLS when asked, and the metadata every call sends."""
    module: Any = grpc.aio if aio else grpc
    opts = [*CHANNEL_OPTIONS, *options]
    if tls or root_certificates is not None:
        credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
        channel = module.secure_channel(target, credentials, options=opts)
    else:
        channel = module.insecure_channel(target, options=opts)
    return channel, ((("x-api-key", api_key),) if api_key else ())
