"""In-process session storage: an LRU bounded in bytes with a TTL, for servers without `REDIS_URL`
(and, in `LruTtlCache` form, for the copies a replica keeps while Redis is unreachable)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from service.errors import SessionTooLargeError
from service.sessions.base import SessionRecord

V = TypeVar("V")


class LruTtlCache(Generic[V]):
    """String-keyed values with a byte budget (least recently used evicted first) and a TTL."""

    def __init__(
        self,
        max_bytes: int,
        ttl_s: float,
        size_of: Callable[[V], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes, self.ttl_s = max_bytes, ttl_s
        self._size_of, self._clock = size_of, clock
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, key: str, *, renew: bool = False) -> V | None:
        """The live value (most recently used now); `renew` restarts its TTL."""
        entry = self._items.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            self.pop(key)
            return None
        self._items.move_to_end(key)
        if renew:
            self._items[key] = (self._clock() + self.ttl_s, entry[1])
        return entry[1]

    def put(self, key: str, value: V) -> None:
        self.pop(key)
        self._items[key] = (self._clock() + self.ttl_s, value)
        self._bytes += self._size_of(value)
        while self._bytes > self.max_bytes and len(self._items) > 1:
            self.pop(next(iter(self._items)))

    def items(self) -> list[tuple[str, V]]:
        """The live (unexpired) entries, least recently used first."""
        now = self._clock()
        return [(key, value) for key, (expires, value) in self._items.items() if expires > now]

    def pop(self, key: str) -> V | None:
        entry = self._items.pop(key, None)
        if entry is None:
            return None
        self._bytes -= self._size_of(entry[1])
        return entry[1]


class MemorySessionStore:
    """`SessionStore` in this process: one replica only; sessions vanish with the process."""

    def __init__(
        self,
        *,
        ttl_s: float,
        max_bytes: int,
        max_total_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self._cache: LruTtlCache[SessionRecord] = LruTtlCache(
            max_total_bytes, ttl_s, lambda r: len(r.blob), clock
        )

    async def get(self, session_id: str) -> SessionRecord | None:
        return self._cache.get(session_id, renew=True)  # in use (read-only frames too): not expiring

    async def compare_and_set(self, session_id: str, expected_version: int, blob: bytes) -> int | None:
        if len(blob) > self.max_bytes:
            raise SessionTooLargeError(f"session state of {len(blob)} bytes > cap {self.max_bytes}")
        current = self._cache.get(session_id)
        if (current.version if current else 0) != expected_version:
            return None
        self._cache.put(session_id, SessionRecord(expected_version + 1, blob))
        return expected_version + 1

    async def delete(self, session_id: str) -> bool:
        return self._cache.pop(session_id) is not None

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
