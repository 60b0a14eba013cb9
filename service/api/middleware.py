"""Pure ASGI middleware of the REST edge: request ids (and the last-resort 500), the body limit.

Pure ASGI rather than `BaseHTTPMiddleware`, so streamed bodies pass through untouched and an
exception reaches the one handler that logs it.
"""

from __future__ import annotations

import logging
import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import REQUEST_ID_HEADER, error_response, internal_error_response
from service.errors import PayloadTooLargeError

log = logging.getLogger(__name__)

_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def scope_request_id(scope: Scope) -> str | None:
    state = scope.get("state")
    return state.get("request_id") if isinstance(state, dict) else None


class RequestIdMiddleware:
    """Gives each request an id (the client's `X-Request-ID` when it is a plain token of up to 128
    characters, else a fresh one), returns it on every response and turns any exception that no
    handler translated into a logged 500 that leaks nothing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = Headers(scope=scope).get(REQUEST_ID_HEADER)
        request_id = offered if offered and _CLIENT_ID.fullmatch(offered) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error in %s %s (request %s)", scope["method"], scope["path"], request_id)
            if started:  # the status line is out: all that is left is to drop the connection
                raise
            await internal_error_response(scope["path"], request_id)(scope, receive, send_with_id)


class BodyLimitMiddleware:
    """413 for a body above `max_bytes`: at once when Content-Length says so (nothing is read),
    else as soon as the streamed body passes the limit (`PayloadTooLargeError` from `receive`)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _too_large(self, nbytes: int, declared: bool) -> PayloadTooLargeError:
        what = f"body of {nbytes} bytes" if declared else f"body of more than {self.max_bytes} bytes"
        return PayloadTooLargeError(
            f"{what} exceeds the limit of {self.max_bytes} bytes", max_bytes=self.max_bytes
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            exc = self._too_large(int(length), declared=True)
            await error_response(exc, scope["path"], scope_request_id(scope))(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large(received, declared=False)
            return message

        await self.app(scope, limited_receive, send)
