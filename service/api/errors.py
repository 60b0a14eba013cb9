"""The one place where the REST edge turns errors into responses.

`ServiceError`s become their own status and `{"error": code, "message": ...}` body (Retry-After on a
429, WWW-Authenticate on a 401); framework errors (validation, unknown routes, bad methods) get the
same body shape; anything else is logged with its traceback and answered as a bare 500 that names
only the request id. Under `/v2` bodies follow the Open Inference Protocol (`{"error": message}`),
with `code` kept alongside.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from service.errors import (
    DeadlineExceededError,
    InternalError,
    InvalidInputError,
    RetryLaterError,
    ServiceError,
    UnauthenticatedError,
)

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
OIP_PREFIX = "/v2"

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class ModelNotFoundError(ServiceError):
    """An Open Inference Protocol path naming a model (or version) this server does not serve."""

    http_status = 404
    grpc_code = "NOT_FOUND"
    code = "model_not_found"


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def error_body(
    status: int, code: str, message: str, path: str, request_id: str | None, **details: Any
) -> JSONResponse:
    """`{"error": code, "message": ..., **details}`; OIP paths get `{"error": message, "code": ...}`."""
    body: dict[str, Any] = {"error": code, "message": message, **details}
    if path == OIP_PREFIX or path.startswith(OIP_PREFIX + "/"):
        body = {**details, "error": message, "code": code}
    headers = {}
    if request_id:
        body["request_id"] = request_id
        headers[REQUEST_ID_HEADER] = request_id
    try:
        return JSONResponse(body, status_code=status, headers=headers)
    except (TypeError, ValueError):  # details that JSON cannot hold (inf, objects): drop them
        return error_body(status, code, message, path, request_id)


def error_response(exc: ServiceError, path: str, request_id: str | None) -> JSONResponse:
    """The response for a typed error (also used by middleware that answers before routing)."""
    response = error_body(exc.http_status, exc.code, exc.message, path, request_id, **exc.details)
    if isinstance(exc, RetryLaterError):
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    elif isinstance(exc, UnauthenticatedError):
        response.headers["WWW-Authenticate"] = 'Bearer realm="mcga"'
    return response


def internal_error_response(path: str, request_id: str | None) -> JSONResponse:
    """A 500 that says nothing about the failure but the id to find it by in the logs."""
    message = f"internal error; quote request id {request_id} when reporting it"
    return error_body(500, InternalError.code, message, path, request_id)


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if exc.http_status >= 500:
        # A deadline the client chose ran out: one line at INFO, no traceback (a client could
        # otherwise flood the log with ~40 lines a request); other 5xx at WARNING, with the cause.
        deadline = isinstance(exc, DeadlineExceededError)
        log.log(
            logging.INFO if deadline else logging.WARNING,
            "%s %s -> %d %s (request %s)",
            request.method,
            request.url.path,
            exc.http_status,
            exc.code,
            request_id_of(request),
            exc_info=exc.__cause__ is not None and not deadline,
        )
    return error_response(exc, request.url.path, request_id_of(request))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"where": ".".join(str(p) for p in err.get("loc", ())), "problem": err.get("msg", "")}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{p['where']}: {p['problem']}" for p in problems)
    return error_response(
        InvalidInputError(f"invalid request: {summary}", problems=problems),
        request.url.path,
        request_id_of(request),
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if isinstance(exc.__cause__, ServiceError):  # e.g. the body limit tripped inside FastAPI's parsing
        return await _service_error(request, exc.__cause__)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    response = error_body(exc.status_code, code, str(exc.detail), request.url.path, request_id_of(request))
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


def install_error_handlers(app: FastAPI) -> None:
    """Register the translations; unknown exceptions are caught by `RequestIdMiddleware`."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
