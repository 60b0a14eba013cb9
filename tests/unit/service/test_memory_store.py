"""In-memory sessions: compare-and-set, TTL, byte-bounded LRU, size cap."""

from __future__ import annotations

import asyncio

import pytest

from service.errors import SessionTooLargeError
from service.sessions import MemorySessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def store(clock: Clock, total: int = 1 << 20) -> MemorySessionStore:
    return MemorySessionStore(ttl_s=10.0, max_bytes=1000, max_total_bytes=total, clock=clock)


def test_compare_and_set_versions() -> None:
    async def scenario() -> None:
        s = store(Clock())
        assert await s.get("a") is None
        assert await s.compare_and_set("a", 0, b"one") == 1
        assert await s.compare_and_set("a", 0, b"stale") is None  # a second writer that read "absent"
        assert await s.compare_and_set("a", 1, b"two") == 2
        record = await s.get("a")
        assert record is not None and (record.version, record.blob) == (2, b"two")
        assert await s.delete("a") and not await s.delete("a")

    asyncio.run(scenario())


def test_ttl_expires_and_use_renews_it() -> None:
    async def scenario() -> None:
        clock = Clock()
        s = store(clock)
        await s.compare_and_set("a", 0, b"x")
        clock.now = 9.0
        assert await s.compare_and_set("a", 1, b"y") == 2  # a write renews the TTL
        clock.now = 18.0
        assert await s.get("a") is not None  # so does a read (read-only frames use the session)
        clock.now = 27.5
        assert await s.get("a") is not None
        clock.now = 38.0  # 10.5 s without use
        assert await s.get("a") is None

    asyncio.run(scenario())


def test_lru_evicts_by_bytes() -> None:
    async def scenario() -> None:
        s = store(Clock(), total=2500)
        for key in "abc":
            await s.compare_and_set(key, 0, b"x" * 1000)
        assert await s.get("a") is None  # least recently used, over the 2500-byte budget
        assert await s.get("b") is not None and await s.get("c") is not None

    asyncio.run(scenario())


def test_size_cap() -> None:
    async def scenario() -> None:
        s = store(Clock())
        with pytest.raises(SessionTooLargeError):
            await s.compare_and_set("a", 0, b"x" * 1001)
        assert await s.get("a") is None

    asyncio.run(scenario())
