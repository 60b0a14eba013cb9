"""A bounded load test on loopback: a few hundred requests from many concurrent REST and gRPC
clients against a small queue, each client waiting out the Retry-After it is given (jittered and
capped, as a well-behaved client would; clients that retried at once spent all their attempts
inside the first burst on a slow machine and never saw a 200). Only 200s and 429s with Retry-After
(gRPC: OK and RESOURCE_EXHAUSTED with retry-after-s), never a 5xx; the queue never grows past its bound; every
request is answered within the time limit; afterwards the queue is empty, no task is left behind and
the process' memory is back near its baseline."""

from __future__ import annotations

import asyncio
import gc
import random
from collections import Counter
from collections.abc import Callable

import grpc
import httpx
import numpy as np

from service.client.grpc_convert import array_to_tensor
from service.grpc.gen.mcga.v1 import reconstruction_pb2 as pb
from service.settings import Settings
from tests.integration.hostile_inputs import png
from tests.integration.serving import Both, serve_both

SettingsFactory = Callable[..., Settings]
REST_CLIENTS, REST_EACH = 40, 6  # 240 requests
GRPC_CLIENTS, GRPC_EACH = 12, 8  # 96 calls
MAX_QUEUE = 6
LIMIT_S = 90.0
BACKOFF_CAP_S = 1.5


async def back_off(retry_after_s: float, rng: random.Random) -> None:
    """Wait out a refusal: the server's hint, jittered by +-50% and capped so the test stays short."""
    await asyncio.sleep(min(retry_after_s, BACKOFF_CAP_S) * (0.5 + rng.random()))


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def _rest_client(url: str, body: bytes, seen: Counter[str], rng: random.Random) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for _ in range(REST_EACH):
            r = await client.post("/reconstruct", content=body, params={"format": "npy"})
            seen[f"http {r.status_code}"] += 1
            if r.status_code == 429:
                assert int(r.headers["Retry-After"]) >= 1
                assert r.json()["error"] == "queue_full"
                await back_off(float(r.headers["Retry-After"]), rng)
            else:
                assert r.status_code == 200, r.text[:200]


async def _grpc_client(both: Both, rgb: np.ndarray, seen: Counter[str], rng: random.Random) -> None:
    channel = both.channel()
    try:
        stub = both.stub(channel)
        for _ in range(GRPC_EACH):
            request = pb.ReconstructRequest(image=pb.Image(raw=array_to_tensor(rgb)))
            try:
                await stub.Reconstruct(request, timeout=30)
            except grpc.aio.AioRpcError as exc:
                refused: grpc.aio.AioRpcError | None = exc
            else:
                refused = None
            if refused is None:
                seen["grpc OK"] += 1
                continue
            assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (refused.code(), refused.details())
            retry_after_s = float(dict(refused.trailing_metadata() or ())["retry-after-s"])
            assert retry_after_s > 0
            seen["grpc RESOURCE_EXHAUSTED"] += 1
            await back_off(retry_after_s, rng)
    finally:
        await channel.close()


async def _round(both: Both, rgb: np.ndarray, seen: Counter[str]) -> int:
    """One load round; returns the deepest queue observed."""
    deepest = 0

    async def watch() -> None:
        nonlocal deepest
        while True:
            deepest = max(deepest, both.core.engine.queue_depth)
            await asyncio.sleep(0.002)

    watcher = asyncio.create_task(watch())
    body = png(rgb)
    try:
        await asyncio.gather(
            *(_rest_client(both.rest_url, body, seen, random.Random(i)) for i in range(REST_CLIENTS)),
            *(_grpc_client(both, rgb, seen, random.Random(-1 - i)) for i in range(GRPC_CLIENTS)),
        )
    finally:
        watcher.cancel()
    return deepest


def test_overload_is_bounded_and_sheds_with_retry_after(make_settings: SettingsFactory) -> None:
    settings = make_settings(max_batch=2, max_queue=MAX_QUEUE, max_wait_ms=1.0, request_timeout_s=30.0)
    rgb = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)

    async def scenario() -> None:
        async with serve_both(settings) as both:
            warm: Counter[str] = Counter()
            await _round(both, rgb, warm)  # allocator pools, connection machinery, thread pools
            gc.collect()
            baseline_rss, baseline_tasks = rss_bytes(), len(asyncio.all_tasks())
            seen: Counter[str] = Counter()
            deepest = await asyncio.wait_for(_round(both, rgb, seen), LIMIT_S)
            assert sum(seen.values()) == REST_CLIENTS * REST_EACH + GRPC_CLIENTS * GRPC_EACH, seen
            assert set(seen) <= {"http 200", "http 429", "grpc OK", "grpc RESOURCE_EXHAUSTED"}, seen
            assert seen["http 200"] and seen["http 429"] and seen["grpc OK"], seen
            assert deepest <= MAX_QUEUE, deepest
            for _ in range(100):  # request tasks may outlive their responses by a few loop turns
                if len(asyncio.all_tasks()) <= baseline_tasks:
                    break
                await asyncio.sleep(0.1)
            gc.collect()
            assert both.core.engine.queue_depth == 0
            assert len(asyncio.all_tasks()) <= baseline_tasks
            grown = rss_bytes() - baseline_rss
            assert grown < 64 << 20, f"RSS grew by {grown / 2**20:.1f} MiB after the load"
            samples = [s for m in both.core.metrics.registry.collect() for s in m.samples]
            http5xx = [
                s for s in samples if s.name == "mcga_http_requests_total" and s.labels["status"] >= "500"
            ]
            assert not [s for s in http5xx if s.value], http5xx
            shed = both.core.metrics.registry.get_sample_value(
                "mcga_queue_dropped_total", {"reason": "queue_full"}
            )
            assert (
                shed
                == warm["http 429"]
                + warm["grpc RESOURCE_EXHAUSTED"]
                + seen["http 429"]
                + seen["grpc RESOURCE_EXHAUSTED"]
            )

    asyncio.run(asyncio.wait_for(scenario(), 2 * LIMIT_S))
