"""The one error a client raises: what the server said, typed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ClientError(Exception):
    """A call the server refused or failed.

    `status` is the HTTP status (int) over REST, 0 when no HTTP response arrived at all (refused,
    reset, timed out, TLS failed: `code` "unavailable" or "timeout"), the gRPC status code name
    (e.g. "INVALID_ARGUMENT") over gRPC; `code` is the service's stable error code (e.g.
    "invalid_input", "queue_full"); `retry_after_s` is set for overload (429 / RESOURCE_EXHAUSTED).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | str,
        code: str,
        details: Mapping[str, Any] | None = None,
        retry_after_s: float | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.details = dict(details or {})
        self.retry_after_s, self.request_id = retry_after_s, request_id
