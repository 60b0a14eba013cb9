"""The REST edge on a real Redis: readiness reports the store, and two replicas (two apps, two
cores) share one session through it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
Encode = Callable[[str, np.ndarray], bytes]
ApiFactory = Callable[..., AbstractAsyncContextManager[Any]]


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), timeout=120))


def test_two_replicas_share_a_session(api: ApiFactory, shared_redis: tuple[str, str], encode: Encode) -> None:
    url, prefix = shared_redis
    frame = encode("png", np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8))
    header = {"X-Session-ID": "replicated"}

    async def scenario() -> None:
        async with (
            api(redis_url=url, redis_key_prefix=prefix) as a,
            api(redis_url=url, redis_key_prefix=prefix) as b,
        ):
            ready = await a.client.get("/readyz")
            assert ready.status_code == 200 and ready.json() == {"ready": True, "model": True, "store": True}
            first = await a.client.post("/reconstruct", content=frame, headers=header)
            second = await b.client.post("/reconstruct", content=frame, headers=header)
            assert (first.headers["X-Session-Step"], second.headers["X-Session-Step"]) == ("1", "2")
            assert second.headers["X-TTA-Outcome"] == "adapted"
            info = (await a.client.get("/sessions/replicated")).json()
            assert (info["steps"], info["source"]) == (2, "store")  # version: random first, +1 a write
            assert (await b.client.delete("/sessions/replicated")).json()["deleted"] is True
            assert (await a.client.get("/sessions/replicated")).status_code == 404
            text = (await a.client.get("/metrics")).text
            assert 'mcga_session_store_operations_total{op="cas",result="stored"}' in text

    run(scenario)


def test_unreachable_redis_fails_readiness_but_serves(api: ApiFactory, encode: Encode) -> None:
    frame = encode("png", np.zeros((8, 8, 3), np.uint8))

    async def scenario() -> None:
        async with api(
            redis_url="redis://127.0.0.1:1/0", redis_op_timeout_s=0.05, redis_connect_timeout_s=0.05
        ) as a:
            ready = await a.client.get("/readyz")
            assert ready.status_code == 503 and ready.json() == {
                "ready": False,
                "model": True,
                "store": False,
            }
            r = await a.client.post("/reconstruct", content=frame, headers={"X-Session-ID": "s"})
            assert r.status_code == 200 and r.headers["X-TTA-Outcome"] in (
                "kept_local",
                "skipped_store_unavailable",
            )

    run(scenario)
