"""Redis stopped, restarted or stalled in the middle of a stream (a private `redis-server`): every
frame is answered, the response says what happened to its adaptation, and adaptation resumes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import numpy as np

from service.contracts import ReconstructRequest, ReconstructResult, TTAOutcome
from service.core import InferenceCore
from service.settings import Settings

T = TypeVar("T")
Frames = Callable[..., list[np.ndarray]]
SettingsFactory = Callable[..., Settings]


class Server(Protocol):
    url: str

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def client(self) -> Any: ...


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), timeout=120))


def outage_settings(make_settings: SettingsFactory, server: Server, **kw: Any) -> Settings:
    """One failure opens the breaker for 2 s: long enough that the next frames, on a loaded machine
    too, are short-circuited. A stopped Redis refuses at once, so the 2 s op timeout never runs out."""
    fast_failing: dict[str, Any] = {
        "redis_op_timeout_s": 2.0,
        "redis_connect_timeout_s": 2.0,
        "breaker_failures": 1,
        "breaker_reset_s": 2.0,
    }
    return make_settings(redis_url=server.url, **(fast_failing | kw))


def sample(core: InferenceCore, name: str, **labels: str) -> float:
    return core.metrics.registry.get_sample_value(name, labels) or 0.0


async def send(core: InferenceCore, rgbs: list[np.ndarray]) -> list[ReconstructResult]:
    return [await core.reconstruct(ReconstructRequest(x, session_id="cam")) for x in rgbs]


def test_stream_survives_redis_restart_and_resumes(
    redis_process: Server, make_settings: SettingsFactory, frames: Frames
) -> None:
    settings = outage_settings(make_settings, redis_process)
    rgbs = frames(9, 16, 16, seed=11)

    async def scenario() -> None:
        core = InferenceCore.build(settings)
        await core.start()
        try:
            before = await send(core, rgbs[:3])
            assert [(r.tta, r.session_step) for r in before] == [(TTAOutcome.ADAPTED, i) for i in (1, 2, 3)]

            await asyncio.to_thread(redis_process.stop)
            during = await send(core, rgbs[3:6])
            assert all(r.cube.shape == (16, 16, 31) for r in during)  # every frame answered
            assert [(r.tta, r.session_step) for r in during] == [
                (TTAOutcome.KEPT_LOCAL, i) for i in (4, 5, 6)
            ]
            assert not (await core.readiness()).ready
            assert sample(core, "mcga_session_store_errors_total", op="get") >= 1
            assert sample(core, "mcga_session_store_operations_total", op="get", result="short_circuit") >= 1

            await asyncio.to_thread(redis_process.start)  # empty: no persistence
            await asyncio.sleep(settings.breaker_reset_s)
            after = await send(core, rgbs[6:9])
            assert [(r.tta, r.session_step) for r in after] == [(TTAOutcome.ADAPTED, i) for i in (7, 8, 9)]
            info = await core.session_info("cam")
            assert (info.step, info.source) == (9, "store")
            assert (await core.readiness()).ready
        finally:
            await core.stop()

    run(scenario)


def test_skip_fallback_serves_unadapted_then_resumes(
    redis_process: Server, make_settings: SettingsFactory, frames: Frames
) -> None:
    settings = outage_settings(make_settings, redis_process, store_fallback="skip")
    rgbs = frames(5, 16, 16, seed=12)

    async def scenario() -> None:
        core = InferenceCore.build(settings)
        await core.start()
        try:
            assert [r.session_step for r in await send(core, rgbs[:2])] == [1, 2]
            await asyncio.to_thread(redis_process.stop)
            during = await send(core, rgbs[2:4])
            assert [(r.tta, r.session_step) for r in during] == [
                (TTAOutcome.SKIPPED_STORE_UNAVAILABLE, None)
            ] * 2
            await asyncio.to_thread(redis_process.start)
            await asyncio.sleep(settings.breaker_reset_s)
            (after,) = await send(core, rgbs[4:])
            assert (
                after.tta is TTAOutcome.ADAPTED and after.session_step == 1
            )  # the restarted Redis was empty
        finally:
            await core.stop()

    run(scenario)


def test_stalled_redis_costs_one_timeout_not_the_frame(
    redis_process: Server, make_settings: SettingsFactory, frames: Frames
) -> None:
    settings = outage_settings(make_settings, redis_process, breaker_reset_s=30.0, redis_op_timeout_s=0.2)
    rgbs = frames(4, 16, 16, seed=13)

    async def scenario() -> None:
        core = InferenceCore.build(settings)
        await core.start()
        admin = redis_process.client()
        try:
            assert [r.session_step for r in await send(core, rgbs[:2])] == [1, 2]
            admin.execute_command("CLIENT", "PAUSE", "10000", "ALL")  # Redis hangs for 10 s
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            during = await send(core, rgbs[2:4])
            elapsed = loop.time() - t0
            assert [(r.tta, r.session_step) for r in during] == [(TTAOutcome.KEPT_LOCAL, i) for i in (3, 4)]
            # One op timeout (0.2 s) opened the breaker; the second frame never waited on Redis.
            assert elapsed < 5.0
            assert sample(core, "mcga_session_store_breaker_open") == 1
            assert sample(core, "mcga_session_store_operations_total", op="get", result="short_circuit") >= 1
        finally:
            admin.execute_command("CLIENT", "UNPAUSE")
            admin.close()
            await core.stop()

    run(scenario)
