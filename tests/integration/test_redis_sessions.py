"""Sessions in a real Redis: round trip, TTL, size cap, compare-and-set, and two replicas adapting
one session concurrently without losing a step."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import numpy as np
import pytest

from service.contracts import ReconstructRequest, TTAOutcome
from service.core import InferenceCore
from service.errors import SessionTooLargeError
from service.sessions import RedisSessionStore
from service.settings import Settings

T = TypeVar("T")
Frames = Callable[..., list[np.ndarray]]
SettingsFactory = Callable[..., Settings]


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), timeout=120))


def store(shared_redis: tuple[str, str], ttl_s: float = 60.0, max_bytes: int = 4096) -> RedisSessionStore:
    url, prefix = shared_redis
    return RedisSessionStore(url, ttl_s=ttl_s, max_bytes=max_bytes, key_prefix=prefix)


def test_round_trip_and_compare_and_set(shared_redis: tuple[str, str]) -> None:
    async def scenario() -> None:
        s = store(shared_redis)
        try:
            assert await s.get("a") is None
            blob = bytes(range(256)) * 4  # binary-safe
            first = await s.compare_and_set("a", 0, blob)
            assert first is not None and 1 <= first <= 2**40
            record = await s.get("a")
            assert record is not None and (record.version, record.blob) == (first, blob)
            assert await s.compare_and_set("a", 0, b"stale") is None
            assert await s.compare_and_set("a", first + 1, b"future") is None
            assert await s.compare_and_set("a", first, b"next") == first + 1
            record = await s.get("a")  # the version stored as written: an exact integer
            assert record is not None and (record.version, record.blob) == (first + 1, b"next")
            assert await s.delete("a") and await s.get("a") is None
        finally:
            await s.close()

    run(scenario)


def test_ttl_is_set_refreshed_and_expires(shared_redis: tuple[str, str]) -> None:
    async def scenario() -> None:
        s = store(shared_redis, ttl_s=2.0)  # seconds of slack for a loaded machine
        try:
            first = await s.compare_and_set("t", 0, b"x")
            remaining = await s.ttl_s("t")
            assert first is not None and remaining is not None and 0 < remaining <= 2.0
            await asyncio.sleep(1.2)
            assert await s.compare_and_set("t", first, b"y") == first + 1  # a write refreshes the TTL
            await asyncio.sleep(1.2)  # 2.4 s after the first write: alive only through the refresh
            assert await s.get("t") is not None  # ... and a read renews it (read-only frames)
            await asyncio.sleep(1.2)  # 2.4 s after the last write: alive only through the read
            assert await s.get("t") is not None
            deadline = asyncio.get_running_loop().time() + 10
            while await s.ttl_s("t") is not None:  # and, unused, it does expire (a get would renew it)
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.1)
        finally:
            await s.close()

    run(scenario)


def test_size_cap_refuses_oversize_state(shared_redis: tuple[str, str]) -> None:
    async def scenario() -> None:
        s = store(shared_redis, max_bytes=1024)
        try:
            with pytest.raises(SessionTooLargeError):
                await s.compare_and_set("big", 0, b"x" * 1025)
            assert await s.get("big") is None
            assert await s.compare_and_set("big", 0, b"x" * 1024) is not None
        finally:
            await s.close()

    run(scenario)


def test_a_write_prepared_before_a_reset_cannot_land_after_it(shared_redis: tuple[str, str]) -> None:
    """Replica B read the session, then it was reset (DELETE) and started afresh elsewhere: B's write
    must conflict, not undo the reset; versions restarting at 1 let it through (ABA)."""

    async def scenario() -> None:
        a, b, c = store(shared_redis), store(shared_redis), store(shared_redis)
        try:
            for _ in range(20):  # each round has a one-in-2^40 chance of a matching first version
                first = await a.compare_and_set("aba", 0, b"old 1")
                seen = await b.get("aba")
                assert first is not None and seen is not None and seen.version == first
                assert await a.delete("aba")
                assert await c.compare_and_set("aba", 0, b"new 1") is not None
                assert await b.compare_and_set("aba", seen.version, b"old 2") is None
                now = await a.get("aba")
                assert now is not None and now.blob == b"new 1"
                assert await a.delete("aba")
        finally:
            for s in (a, b, c):
                await s.close()

    run(scenario)


def test_concurrent_read_modify_writes_lose_nothing(shared_redis: tuple[str, str]) -> None:
    """Two clients (separate connection pools, as two replicas) increment one counter 25 times each."""

    async def writer(s: RedisSessionStore, times: int) -> int:
        conflicts = 0
        for _ in range(times):
            while True:
                record = await s.get("counter")
                version, value = (record.version, int(record.blob)) if record else (0, 0)
                await asyncio.sleep(0)  # let the other writer interleave
                if await s.compare_and_set("counter", version, str(value + 1).encode()) is not None:
                    break
                conflicts += 1
        return conflicts

    async def scenario() -> tuple[int, int]:
        a, b = store(shared_redis), store(shared_redis)
        try:
            conflicts = await asyncio.gather(writer(a, 25), writer(b, 25))
            record = await a.get("counter")
            assert record is not None
            return int(record.blob), sum(conflicts)
        finally:
            await a.close()
            await b.close()

    total, conflicts = run(scenario)
    assert total == 50
    assert conflicts > 0  # the writers did race


def test_two_replicas_adapting_one_session_lose_no_step(
    shared_redis: tuple[str, str], make_settings: SettingsFactory, frames: Frames
) -> None:
    url, prefix = shared_redis
    settings = make_settings(redis_url=url, redis_key_prefix=prefix, session_cas_retries=50)
    per_replica = 8

    async def scenario() -> tuple[list[TTAOutcome], int, float]:
        a, b = InferenceCore.build(settings), InferenceCore.build(settings)
        await asyncio.gather(a.start(), b.start())
        try:

            async def stream(core: InferenceCore, seed: int) -> list[TTAOutcome]:
                out = []
                for rgb in frames(per_replica, 16, 16, seed=seed):
                    out.append((await core.reconstruct(ReconstructRequest(rgb, session_id="shared"))).tta)
                return out

            outcomes = await asyncio.gather(stream(a, 1), stream(b, 2))
            info = await a.session_info("shared")
            conflicts = sum(
                c.metrics.registry.get_sample_value(
                    "mcga_session_store_operations_total", {"op": "cas", "result": "conflict"}
                )
                or 0.0
                for c in (a, b)
            )
            return outcomes[0] + outcomes[1], info.step, conflicts
        finally:
            await asyncio.gather(a.stop(), b.stop())

    outcomes, step, conflicts = run(scenario)
    assert outcomes == [TTAOutcome.ADAPTED] * (2 * per_replica)
    assert step == 2 * per_replica
    assert conflicts > 0  # the replicas did race, and the losers re-applied their frames
