"""Who may call what, for both edges: API keys (inference and admin) and the per-client rate limit.

Routes fall in four classes (`Access`): OPEN (probes and API descriptions: never a key, never
limited), METRICS (open unless `metrics_require_key`; never limited), INFERENCE and ADMIN.
- Inference routes ask for a key only when `api_keys` is set; an admin key opens them too.
- Admin routes (`/admin/*`, `DELETE /sessions/{id}`) are open only while no key at all is
  configured (the embedded set-up); once any key is, they ask for an admin key (403 for an
  inference key, and for everyone when no admin key is configured).
- With `rate_limit_rps`, every INFERENCE or ADMIN call takes a token from its client's bucket
  before its key is checked, so floods of wrong keys are limited too. The client is the key's
  fingerprint when the key is valid, else the remote address.
Keys are compared with `hmac.compare_digest` against every configured key (no early exit), and are
never logged or kept in clear beyond the configured set.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal

from service.errors import PermissionDeniedError, RateLimitedError, UnauthenticatedError
from service.ratelimit import TokenBucketLimiter
from service.settings import Settings

MIN_KEY_CHARS = 16
Role = Literal["admin", "inference", "anonymous"]


class Access(StrEnum):
    OPEN = "open"
    METRICS = "metrics"
    INFERENCE = "inference"
    ADMIN = "admin"


class AccessConfigError(RuntimeError):
    """Keys that cannot be used (too short, with whitespace): the server refuses to start."""


def read_key_file(path: Path) -> tuple[str, ...]:
    """Keys from a file (a mounted secret): one per line or comma-separated; `#` starts a comment."""
    keys: list[str] = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0]
        keys.extend(k.strip() for k in line.split(",") if k.strip())
    return tuple(keys)


def _checked(keys: Iterable[str], what: str) -> tuple[bytes, ...]:
    out = []
    for i, key in enumerate(keys, 1):
        if len(key) < MIN_KEY_CHARS or not key.isascii() or not key.isprintable() or " " in key:
            raise AccessConfigError(
                f"{what}: key #{i} is not usable; keys are at least {MIN_KEY_CHARS} printable ASCII "
                "characters without spaces or commas (e.g. `openssl rand -hex 32`)"
            )
        out.append(key.encode())
    return tuple(out)


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key a request carries: `Authorization: Bearer KEY`, else `X-API-Key: KEY`."""
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return x_api_key.strip() if x_api_key and x_api_key.strip() else None


def _matches(key: bytes, known: tuple[bytes, ...]) -> bool:
    found = False
    for candidate in known:
        found |= hmac.compare_digest(key, candidate)
    return found


@dataclass(frozen=True)
class Caller:
    client: str  # rate-limit identity: "key:<fingerprint>" or "addr:<address>"
    role: Role


class AccessControl:
    def __init__(
        self,
        inference_keys: Iterable[str] = (),
        admin_keys: Iterable[str] = (),
        *,
        metrics_require_key: bool = False,
        limiter: TokenBucketLimiter | None = None,
    ) -> None:
        self._inference = _checked(inference_keys, "api_keys")
        self._admin = _checked(admin_keys, "admin_api_keys")
        self.metrics_require_key, self.limiter = metrics_require_key, limiter

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessControl:
        """Keys from settings and their files (OSError when a file is unreadable)."""
        s = settings
        inference = [*s.api_keys, *(read_key_file(s.api_keys_file) if s.api_keys_file else ())]
        admin = [*s.admin_api_keys, *(read_key_file(s.admin_api_keys_file) if s.admin_api_keys_file else ())]
        limiter = None
        if s.rate_limit_rps > 0:
            burst = s.rate_limit_burst or max(1, round(s.rate_limit_rps))
            limiter = TokenBucketLimiter(s.rate_limit_rps, burst)
        return cls(inference, admin, metrics_require_key=s.metrics_require_key, limiter=limiter)

    @property
    def keys_required(self) -> bool:
        return bool(self._inference or self._admin)

    @property
    def active(self) -> bool:
        """False on the embedded defaults: the edges then skip every check."""
        return self.keys_required or self.limiter is not None

    def identify(self, key: str | None, address: str | None) -> Caller:
        if key is not None:
            raw = key.encode()
            role: Role | None = (
                "admin"
                if _matches(raw, self._admin)
                else "inference"
                if _matches(raw, self._inference)
                else None
            )
            if role is not None:
                return Caller(f"key:{hashlib.sha256(raw).hexdigest()[:16]}", role)
        return Caller(f"addr:{address or 'unknown'}", "anonymous")

    def check(self, access: Access, key: str | None, address: str | None) -> Caller | None:
        """The caller, or raises Unauthenticated (401), PermissionDenied (403), RateLimited (429)."""
        if access is Access.OPEN or not self.active:
            return None
        caller = self.identify(key, address)
        if access is Access.METRICS:
            if self.metrics_require_key and self.keys_required and caller.role == "anonymous":
                raise self._unauthenticated(key, "/metrics")
            return caller
        if self.limiter is not None:
            wait = self.limiter.acquire(caller.client)
            if wait > 0:
                raise RateLimitedError(
                    f"rate limit of {self.limiter.rate:g} requests/s (bursts of {self.limiter.burst}) "
                    f"reached; retry in {wait:.2f} s",
                    wait,
                )
        if access is Access.INFERENCE:
            if self._inference and caller.role == "anonymous":
                raise self._unauthenticated(key, "this route")
        elif self.keys_required and caller.role != "admin":
            if caller.role == "anonymous":
                raise self._unauthenticated(key, "this admin route")
            raise PermissionDeniedError("this route needs an admin key; the key sent is an inference key")
        return caller

    @staticmethod
    def _unauthenticated(key: str | None, what: str) -> UnauthenticatedError:
        if key is None:
            return UnauthenticatedError(
                f"{what} needs an API key: send `Authorization: Bearer KEY` or `X-API-Key: KEY`"
            )
        return UnauthenticatedError("the API key sent is not valid")
