"""Faults while serving, both edges on loopback: Redis stopped and restarted in the middle of a gRPC
stream and of concurrent HTTP traffic (every frame answered, every session's steps continuous, and
what was adapted during the outage written back, at the latest when the server stops), and clients
that hang up mid-request (their queued work dropped, the server serving on)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import numpy as np
import pytest

from service.client.grpc_client import AsyncGrpcClient
from service.client.grpc_convert import array_to_tensor
from service.contracts import ReconstructRequest
from service.core import InferenceCore
from service.grpc.gen.mcga.v1 import reconstruction_pb2 as pb
from service.settings import Settings
from tests.integration.conftest import RedisProcess
from tests.integration.hostile_inputs import png
from tests.integration.serving import Both, serve_both

SettingsFactory = Callable[..., Settings]
PREFIX = "mcga:session:"


def outage_settings(make_settings: SettingsFactory, redis: RedisProcess) -> Settings:
    return make_settings(
        redis_url=redis.url,
        redis_op_timeout_s=2.0,  # a stopped Redis refuses at once; a loaded machine may be slow
        redis_connect_timeout_s=2.0,
        breaker_failures=1,
        breaker_reset_s=0.3,
    )


def stored_step(redis: RedisProcess, session: str) -> int | None:
    """The step of a session as Redis holds it (the state's safetensors header)."""
    client = redis.client()
    try:
        blob = client.hget(PREFIX + session, "b")
    finally:
        client.close()
    if not isinstance(blob, bytes):
        return None
    header = json.loads(blob[8 : 8 + int.from_bytes(blob[:8], "little")])
    return int(header["__metadata__"]["step"])


def frames(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(n)]


def test_redis_restart_during_a_grpc_stream(
    redis_process: RedisProcess, make_settings: SettingsFactory
) -> None:
    settings = outage_settings(make_settings, redis_process)
    sent = frames(12, seed=3)

    async def paced() -> AsyncIterator[np.ndarray]:
        for i, frame in enumerate(sent):
            if i == 4:
                await asyncio.to_thread(redis_process.stop)
            if i == 8:
                await asyncio.to_thread(redis_process.start)  # empty: no persistence
                await asyncio.sleep(settings.breaker_reset_s + 0.2)
            yield frame
            await asyncio.sleep(0.05)

    async def scenario() -> list[tuple[int, str | None, int | None]]:
        async with serve_both(settings) as both, AsyncGrpcClient(both.grpc_target) as client:
            got = [
                (o.index, o.result.tta, o.result.session_step) if o.result else (o.index, "missing", None)
                async for o in client.stream(paced(), session_id="cam-stream")
            ]
            assert both.core.engine.queue_depth == 0
        return got

    got = asyncio.run(asyncio.wait_for(scenario(), 90))
    assert [index for index, _, _ in got] == list(range(12))
    assert [step for _, _, step in got] == list(range(1, 13))  # no step lost, none repeated
    outcomes = [tta for _, tta, _ in got]
    assert "kept_local" in outcomes and outcomes[-1] == "adapted", outcomes
    assert stored_step(redis_process, "cam-stream") == 12


def test_redis_restart_during_http_load(redis_process: RedisProcess, make_settings: SettingsFactory) -> None:
    settings = outage_settings(make_settings, redis_process)
    sessions, per_session = 6, 8
    bodies = [png(f) for f in frames(per_session, seed=4)]

    async def camera(client: httpx.AsyncClient, name: str, steps: list[int], outcomes: list[str]) -> None:
        for body in bodies:
            r = await client.post("/reconstruct", content=body, params={"session_id": name, "format": "npy"})
            assert r.status_code == 200, r.text[:200]
            steps.append(int(r.headers["X-Session-Step"]))
            outcomes.append(r.headers["X-TTA-Outcome"])
            await asyncio.sleep(0.08)  # a camera: 8 frames over >= 0.6 s, across the outage

    async def outage() -> None:
        await asyncio.sleep(0.3)
        await asyncio.to_thread(redis_process.stop)
        await asyncio.sleep(0.6)
        await asyncio.to_thread(redis_process.start)

    async def scenario() -> tuple[dict[str, list[int]], list[str]]:
        steps: dict[str, list[int]] = {f"cam-{i}": [] for i in range(sessions)}
        outcomes: list[str] = []
        async with serve_both(settings) as both:
            client = httpx.AsyncClient(base_url=both.rest_url, timeout=30)
            try:
                await asyncio.gather(outage(), *(camera(client, n, s, outcomes) for n, s in steps.items()))
            finally:
                await client.aclose()
        return steps, outcomes

    steps, outcomes = asyncio.run(asyncio.wait_for(scenario(), 90))
    assert all(s == list(range(1, per_session + 1)) for s in steps.values()), steps
    assert "kept_local" in outcomes, outcomes
    assert all(stored_step(redis_process, name) == per_session for name in steps)


@pytest.mark.parametrize("breaker_settled", [True, False], ids=["breaker-closed", "breaker-still-open"])
def test_a_stop_writes_back_what_was_adapted_while_redis_was_away(
    redis_process: RedisProcess, make_settings: SettingsFactory, breaker_settled: bool
) -> None:
    """The last frames of a session ran during an outage; Redis is back when the server stops,
    possibly before the breaker's reset time has passed (the flush must not be short-circuited)."""
    settings = outage_settings(make_settings, redis_process)
    rgbs = [f.astype(np.float32) / 255 for f in frames(4, seed=7)]

    async def scenario() -> list[str]:
        core = InferenceCore.build(settings)
        await core.start()
        outcomes = []
        try:
            for i, rgb in enumerate(rgbs):
                if i == 2:
                    await asyncio.to_thread(redis_process.stop)
                result = await core.reconstruct(ReconstructRequest(rgb, session_id="cam-flush"))
                outcomes.append(result.tta.value)
            await asyncio.to_thread(redis_process.start)
            if breaker_settled:
                await asyncio.sleep(settings.breaker_reset_s + 0.1)
        finally:
            await core.stop()
        return outcomes

    assert asyncio.run(asyncio.wait_for(scenario(), 60)) == ["adapted"] * 2 + ["kept_local"] * 2
    assert stored_step(redis_process, "cam-flush") == 4


@asynccontextmanager
async def device_held(both: Both) -> AsyncIterator[None]:
    """Hold the single device worker thread (a job that waits on a gate), so frames stay queued."""
    gate = threading.Event()
    job = asyncio.ensure_future(both.core.engine._job(gate.wait, 30))  # the worker's own job queue
    await asyncio.sleep(0.05)
    try:
        yield
    finally:
        gate.set()
        await job


async def until_queued(both: Both, depth: int) -> None:
    for _ in range(400):
        if both.core.engine.queue_depth >= depth:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"queue never reached {depth}")


def _sample(both: Both, name: str, **labels: str) -> float:
    return both.core.metrics.registry.get_sample_value(name, labels) or 0.0


def test_clients_that_hang_up_mid_request(make_settings: SettingsFactory) -> None:
    settings = make_settings(max_batch=1, max_wait_ms=0.0)
    body = png(frames(1, seed=5)[0])

    async def scenario() -> None:
        async with serve_both(settings) as both:
            async with device_held(both), httpx.AsyncClient(base_url=both.rest_url, timeout=30) as rest:
                filler = frames(1, seed=8)[0].astype(np.float32) / 255  # takes the batch in dispatch
                started = _sample(both, "mcga_queue_duration_seconds_count")
                first = asyncio.ensure_future(both.core.reconstruct(ReconstructRequest(filler)))
                for _ in range(400):  # until the batcher has taken it (and waits on the held worker)
                    if _sample(both, "mcga_queue_duration_seconds_count") > started:
                        break
                    await asyncio.sleep(0.01)
                # REST over a real socket: the client leaves once its frame is queued
                post = asyncio.ensure_future(rest.post("/reconstruct", content=body))
                await until_queued(both, 1)
                post.cancel()
                # gRPC unary: cancelled by the client once queued
                channel = both.channel()
                stub = both.stub(channel)
                call = stub.Reconstruct(pb.ReconstructRequest(image=pb.Image(encoded=body)))
                await until_queued(both, 2)
                call.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await call
                # gRPC stream: cancelled once its first frame is queued
                stream = stub.StreamReconstruct()
                await stream.write(pb.StreamRequest(config=pb.StreamConfig(session_id="leaver")))
                image = pb.Image(raw=array_to_tensor(frames(1, seed=6)[0]))
                await stream.write(pb.StreamRequest(frame=pb.Frame(index=0, image=image)))
                await until_queued(both, 3)
                stream.cancel()
                # all three are cancelled while still queued (the batcher drops them lazily)
                for _ in range(1500):
                    if _sample(both, "mcga_requests_total", outcome="cancelled") == 3:
                        break
                    await asyncio.sleep(0.01)
                with pytest.raises(asyncio.CancelledError):
                    await post
            assert (await first).cube.shape == (16, 16, 31)
            for _ in range(100):  # the server notices the hang-ups asynchronously
                if _sample(both, "mcga_grpc_streams_active") == 0 and both.core.engine.queue_depth == 0:
                    break
                await asyncio.sleep(0.05)
            assert _sample(both, "mcga_grpc_streams_active") == 0
            assert _sample(both, "mcga_requests_total", outcome="cancelled") == 3
            assert _sample(both, "mcga_queue_dropped_total", reason="cancelled") == 3
            assert (
                _sample(both, "mcga_grpc_requests_total", method="StreamReconstruct", code="CANCELLED") == 1
            )
            # and it serves on
            async with httpx.AsyncClient(base_url=both.rest_url, timeout=30) as client:
                assert (await client.post("/reconstruct", content=body)).status_code == 200
            ok = await stub.Reconstruct(pb.ReconstructRequest(image=pb.Image(encoded=body)))
            assert ok.cube.tensor.shape[2] == 31
            await channel.close()

    asyncio.run(asyncio.wait_for(scenario(), 90))
