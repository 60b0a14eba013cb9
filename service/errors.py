"""Domain errors. Each knows its HTTP status and gRPC status code name, so every edge translates
them in one place and no traceback ever reaches a client."""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    """Base of every error a client may see; `code` is the stable machine-readable name."""

    http_status: ClassVar[int] = 500
    grpc_code: ClassVar[str] = "INTERNAL"
    code: ClassVar[str] = "internal"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.details}


class InvalidInputError(ServiceError):
    http_status = 422
    grpc_code = "INVALID_ARGUMENT"
    code = "invalid_input"


class PayloadTooLargeError(ServiceError):
    http_status = 413
    grpc_code = "INVALID_ARGUMENT"
    code = "payload_too_large"


class RetryLaterError(ServiceError):
    """Come back after `retry_after_s` (HTTP 429 with Retry-After, rounded up; gRPC adds
    `retry-after-s` to the trailing metadata)."""

    http_status = 429
    grpc_code = "RESOURCE_EXHAUSTED"
    code = "retry_later"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message, retry_after_s=retry_after_s)
        self.retry_after_s = retry_after_s


class QueueFullError(RetryLaterError):
    """The bounded queue is full."""

    code = "queue_full"


class RateLimitedError(RetryLaterError):
    """This client used up its request budget (`rate_limit_rps`, `rate_limit_burst`)."""

    code = "rate_limited"


class UnauthenticatedError(ServiceError):
    """No API key, or one the server does not know (HTTP 401 with `WWW-Authenticate: Bearer`)."""

    http_status = 401
    grpc_code = "UNAUTHENTICATED"
    code = "unauthorized"


class PermissionDeniedError(ServiceError):
    """A valid key that does not open this route (an inference key on an admin route)."""

    http_status = 403
    grpc_code = "PERMISSION_DENIED"
    code = "forbidden"


class DeadlineExceededError(ServiceError):
    http_status = 504
    grpc_code = "DEADLINE_EXCEEDED"
    code = "deadline_exceeded"


class RequestCancelledError(ServiceError):
    """The client went away; its queued work was dropped (nginx's 499)."""

    http_status = 499
    grpc_code = "CANCELLED"
    code = "cancelled"


class NotReadyError(ServiceError):
    http_status = 503
    grpc_code = "UNAVAILABLE"
    code = "not_ready"


class StoreUnavailableError(ServiceError):
    """The session store did not answer in time (or the breaker is open)."""

    http_status = 503
    grpc_code = "UNAVAILABLE"
    code = "session_store_unavailable"


class SessionNotFoundError(ServiceError):
    http_status = 404
    grpc_code = "NOT_FOUND"
    code = "session_not_found"


class SessionTooLargeError(ServiceError):
    """A serialised session above `session_max_bytes`: a configuration error, never stored."""

    http_status = 500
    grpc_code = "INTERNAL"
    code = "session_too_large"


class ModelLoadError(ServiceError):
    """Weights that cannot be served (unreadable, wrong kind, missing metadata)."""

    http_status = 422
    grpc_code = "FAILED_PRECONDITION"
    code = "model_load_failed"


class BatchInvariantError(ServiceError):
    """The worker broke a batch invariant (e.g. outputs per batch != inputs per batch)."""

    code = "batch_invariant"


class InternalError(ServiceError):
    code = "internal"
