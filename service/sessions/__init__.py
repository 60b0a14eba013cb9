"""Per-session TTA state: the `SessionStore` protocol, its Redis and in-memory implementations,
and the gateway (timeouts, breaker, local fallback) the core goes through."""

from __future__ import annotations

from service.metrics import Metrics
from service.sessions.base import SessionRecord, SessionStore
from service.sessions.breaker import BreakerState, CircuitBreaker
from service.sessions.gateway import LocalCopy, SaveResult, SessionGateway, Snapshot
from service.sessions.locks import KeyedLocks
from service.sessions.memory import LruTtlCache, MemorySessionStore
from service.sessions.redis_store import RedisSessionStore
from service.settings import Settings


def open_gateway(settings: Settings, metrics: Metrics) -> SessionGateway:
    """Redis when `REDIS_URL` is set (with a local fallback copy per session), memory otherwise."""
    store: SessionStore
    local: LruTtlCache[LocalCopy] | None = None
    if settings.redis_url:
        store = RedisSessionStore(
            settings.redis_url,
            ttl_s=settings.session_ttl_s,
            max_bytes=settings.session_max_bytes,
            key_prefix=settings.redis_key_prefix,
            op_timeout_s=settings.redis_op_timeout_s,
            connect_timeout_s=settings.redis_connect_timeout_s,
        )
        local = LruTtlCache(settings.memory_store_max_bytes, settings.session_ttl_s, lambda c: len(c.blob))
    else:
        store = MemorySessionStore(
            ttl_s=settings.session_ttl_s,
            max_bytes=settings.session_max_bytes,
            max_total_bytes=settings.memory_store_max_bytes,
        )
    return SessionGateway(
        store,
        metrics=metrics,
        breaker=CircuitBreaker(settings.breaker_failures, settings.breaker_reset_s),
        op_timeout_s=settings.redis_op_timeout_s,
        fallback=settings.store_fallback,
        local=local,
    )


__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "KeyedLocks",
    "LocalCopy",
    "LruTtlCache",
    "MemorySessionStore",
    "RedisSessionStore",
    "SaveResult",
    "SessionGateway",
    "SessionRecord",
    "SessionStore",
    "Snapshot",
    "open_gateway",
]
