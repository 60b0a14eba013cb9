"""How the core reaches the session store: per-call timeouts, a circuit breaker, error counting,
and this replica's copies of its sessions so a stream keeps adapting while Redis is away.

While the store is unreachable (fallback "local") a session adapts on the copy kept here and its new
states stay here, marked dirty with the store version they grew from. When the store answers again,
a dirty copy is written back if the store still holds that version (or lost the session, e.g. a
restarted Redis); if another replica moved the session on meanwhile, the store wins and the copy is
dropped. With fallback "skip" an unreachable store means no adaptation for the frame.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, TypeVar

from service.errors import StoreUnavailableError
from service.metrics import Metrics
from service.sessions.base import SessionRecord, SessionStore
from service.sessions.breaker import BreakerState, CircuitBreaker
from service.sessions.memory import LruTtlCache

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Snapshot:
    """A session as read for one frame: the blob to start from and the version to write against."""

    blob: bytes | None
    version: int  # expected version for compare-and-set (0: no record)
    local: bool  # the store was unreachable: this is this replica's copy


@dataclass(frozen=True)
class LocalCopy:
    base_version: int  # the store version this state grew from
    blob: bytes
    dirty: bool  # holds steps the store has not seen


class SaveResult(StrEnum):
    STORED = "stored"
    CONFLICT = "conflict"  # another writer got there first: re-read and re-apply
    LOCAL = "local"  # kept on this replica until the store returns
    SKIPPED = "skipped"  # store unreachable and no local fallback


class SessionGateway:
    def __init__(
        self,
        store: SessionStore,
        *,
        metrics: Metrics,
        breaker: CircuitBreaker,
        op_timeout_s: float,
        fallback: Literal["local", "skip"],
        local: LruTtlCache[LocalCopy] | None,
    ) -> None:
        self.store, self._metrics, self._breaker = store, metrics, breaker
        self._timeout, self._fallback = op_timeout_s, fallback
        self._local = local if fallback == "local" else None

    @property
    def breaker_state(self) -> BreakerState:
        return self._breaker.state

    async def _call(self, op: str, fn: Callable[[], Awaitable[T]], force: bool = False) -> T:
        """`fn` against the store, through the breaker unless `force` (the shutdown flush)."""
        if not force and not self._breaker.allow():
            self._metrics.session_ops.labels(op, "short_circuit").inc()
            raise StoreUnavailableError("session store skipped while its breaker is open")
        verdict = False
        try:
            async with asyncio.timeout(self._timeout):
                result = await fn()
            verdict = True
            self._breaker.record_success()
        except (StoreUnavailableError, TimeoutError) as exc:
            verdict = True
            self._breaker.record_failure()
            self._metrics.session_errors.labels(op).inc()
            self._metrics.session_ops.labels(op, "error").inc()
            log.warning("session store %s failed: %s", op, str(exc) or type(exc).__name__)
            raise StoreUnavailableError(f"session store {op} failed") from exc
        finally:
            if not verdict:
                self._breaker.abandon()
            self._metrics.breaker_open.set(int(self._breaker.state is not BreakerState.CLOSED))
        return result

    async def load(self, session_id: str) -> Snapshot:
        """The state to adapt from; raises `StoreUnavailableError` only with fallback "skip"."""
        try:
            record = await self._call("get", lambda: self.store.get(session_id))
        except StoreUnavailableError:
            if self._local is None:
                raise
            copy = self._local.get(session_id)
            return Snapshot(copy.blob if copy else None, copy.base_version if copy else 0, local=True)
        self._metrics.session_ops.labels("get", "hit" if record else "miss").inc()
        stored = record.version if record else 0
        copy = self._local.get(session_id) if self._local is not None else None
        if copy is not None and copy.dirty:
            if record is None or record.version == copy.base_version:
                self._metrics.session_ops.labels("resume", "write_back").inc()
                return Snapshot(copy.blob, stored, local=False)
            self._metrics.session_ops.labels("resume", "store_won").inc()
            log.info("session %s moved on elsewhere while unreachable here: local steps dropped", session_id)
        if self._local is not None:
            self._remember(session_id, record)
        return Snapshot(record.blob if record else None, stored, local=False)

    def _remember(self, session_id: str, record: SessionRecord | None) -> None:
        assert self._local is not None
        if record is None:
            self._local.pop(session_id)
        else:
            self._local.put(session_id, LocalCopy(record.version, record.blob, dirty=False))

    async def save(self, session_id: str, snapshot: Snapshot, blob: bytes) -> SaveResult:
        if not snapshot.local:
            try:
                version = await self._call(
                    "cas", lambda: self.store.compare_and_set(session_id, snapshot.version, blob)
                )
            except StoreUnavailableError:
                if self._local is None:
                    return SaveResult.SKIPPED
            else:
                if version is None:
                    self._metrics.session_ops.labels("cas", "conflict").inc()
                    return SaveResult.CONFLICT
                self._metrics.session_ops.labels("cas", "stored").inc()
                if self._local is not None:
                    self._remember(session_id, SessionRecord(version, blob))
                return SaveResult.STORED
        if self._local is None:
            return SaveResult.SKIPPED
        self._local.put(session_id, LocalCopy(snapshot.version, blob, dirty=True))
        return SaveResult.LOCAL

    async def inspect(self, session_id: str) -> tuple[SessionRecord, str] | None:
        """The session as the store has it, or this replica's newer copy (with its source)."""
        snap = await self.load(session_id)
        if snap.blob is None:
            return None
        copy = self._local.get(session_id) if self._local is not None else None
        source = "local" if snap.local or (copy is not None and copy.dirty) else "store"
        return SessionRecord(snap.version, snap.blob), source

    async def delete(self, session_id: str) -> bool:
        """Reset a session everywhere this replica can reach (raises when the store is unreachable)."""
        local = self._local.pop(session_id) if self._local is not None else None
        removed = await self._call("delete", lambda: self.store.delete(session_id))
        self._metrics.session_ops.labels("delete", "deleted" if removed else "absent").inc()
        return removed or local is not None

    async def healthy(self) -> bool:
        try:
            await self._call("ping", self.store.ping)
        except StoreUnavailableError:
            return False
        self._metrics.session_ops.labels("ping", "ok").inc()
        return True

    async def flush(self) -> int:
        """Write back this replica's dirty copies (at shutdown, so a stop after a Redis outage loses
        no acknowledged step); returns how many could not be written, each logged."""
        if self._local is None:
            return 0
        # Shutdown is the last chance to write: the breaker may still be open from an outage that
        # has ended, so the first write-back goes to the store regardless; once one fails, the
        # breaker decides for the rest (short-circuiting them at once when the store is down).
        failed, force = 0, True
        for session_id, copy in self._local.items():
            if copy.dirty and not await self._write_back(session_id, copy, force):
                failed, force = failed + 1, False
                log.warning("session %s: locally kept steps not written back at shutdown", session_id)
        return failed

    async def _write_back(self, session_id: str, copy: LocalCopy, force: bool = False) -> bool:
        """True when the store now holds `copy` (or moved on past it elsewhere: the store wins)."""
        assert self._local is not None
        try:
            record = await self._call("get", lambda: self.store.get(session_id), force)
            if record is not None and record.version != copy.base_version:
                self._metrics.session_ops.labels("resume", "store_won").inc()
                return True
            expected = record.version if record else 0
            stored = await self._call(
                "cas", lambda: self.store.compare_and_set(session_id, expected, copy.blob), force
            )
        except StoreUnavailableError:
            return False
        if stored is None:
            return False
        self._metrics.session_ops.labels("resume", "write_back").inc()
        self._local.put(session_id, LocalCopy(stored, copy.blob, dirty=False))
        return True

    async def close(self) -> None:
        await self.store.close()
