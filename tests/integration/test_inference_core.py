"""The inference core end to end (real engine, in-memory sessions): batching, sessions, errors,
overload, deadlines, cancellation, reload and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from prometheus_client import generate_latest

from service.contracts import ReconstructRequest, TTAOutcome
from service.core import InferenceCore
from service.errors import (
    DeadlineExceededError,
    InvalidInputError,
    ModelLoadError,
    NotReadyError,
    PayloadTooLargeError,
    QueueFullError,
    SessionNotFoundError,
)
from service.settings import Settings

T = TypeVar("T")
Frames = Callable[..., list[np.ndarray]]
SettingsFactory = Callable[..., Settings]


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), timeout=120))


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[InferenceCore]:
    core = InferenceCore.build(settings)
    await core.start()
    try:
        yield core
    finally:
        await core.stop()


def sample(core: InferenceCore, name: str, **labels: str) -> float:
    return core.metrics.registry.get_sample_value(name, labels) or 0.0


def test_concurrent_requests_batch_and_match_single_runs(
    make_settings: SettingsFactory, frames: Frames
) -> None:
    rgbs = frames(6, 16, 16)

    async def scenario() -> None:
        async with serving(make_settings(max_batch=4, max_wait_ms=50)) as core:
            together = await asyncio.gather(*(core.reconstruct(ReconstructRequest(x)) for x in rgbs))
            alone = [await core.reconstruct(ReconstructRequest(x)) for x in rgbs]
            for a, b in zip(together, alone, strict=True):
                np.testing.assert_allclose(a.cube, b.cube, rtol=1e-4, atol=1e-5)
                assert a.tta is TTAOutcome.NONE and a.model_version == core.model_info.version
                assert len(a.wavelengths_nm) == a.cube.shape[2] == 31
                assert a.reprojection_error is not None and a.reprojection_error >= 0
            assert sample(core, "mcga_batch_size_sum") > sample(core, "mcga_batch_size_count")
            assert sample(core, "mcga_requests_total", outcome="ok") == 12

    run(scenario)


def test_session_stream_adapts_in_order_and_resets(make_settings: SettingsFactory, frames: Frames) -> None:
    async def scenario() -> None:
        async with serving(make_settings()) as core:
            stream = frames(4, 16, 16, seed=1)
            # Sent all at once: the core serialises a session's frames in arrival order.
            results = await asyncio.gather(
                *(core.reconstruct(ReconstructRequest(x, session_id="cam-1")) for x in stream)
            )
            assert [r.session_step for r in results] == [1, 2, 3, 4]
            assert all(r.tta is TTAOutcome.ADAPTED and r.entropy is not None for r in results)
            info = await core.session_info("cam-1")
            assert (info.step, info.version, info.current_model, info.source) == (4, 4, True, "store")
            assert await core.reset_session("cam-1")
            with pytest.raises(SessionNotFoundError):
                await core.session_info("cam-1")
            again = await core.reconstruct(ReconstructRequest(stream[0], session_id="cam-1"))
            assert again.session_step == 1
            looked = await core.reconstruct(ReconstructRequest(stream[0], session_id="cam-1", tta_steps=0))
            assert looked.tta is TTAOutcome.NONE and looked.session_step == 1

    run(scenario)


@pytest.mark.parametrize(
    ("request_kwargs", "error"),
    [
        ({"rgb": np.zeros((8, 8), np.float32)}, InvalidInputError),
        ({"rgb": np.zeros((8, 8, 4), np.float32)}, InvalidInputError),
        ({"rgb": np.zeros((8, 8, 3), np.uint8)}, InvalidInputError),
        ({"rgb": np.zeros((0, 8, 3), np.float32)}, InvalidInputError),
        ({"rgb": np.zeros((100, 100, 3), np.float32)}, PayloadTooLargeError),
        ({"rgb": np.full((8, 8, 3), np.nan, np.float32)}, InvalidInputError),
        ({"rgb": np.zeros((8, 8, 3), np.float32), "session_id": "no spaces"}, InvalidInputError),
        ({"rgb": np.zeros((8, 8, 3), np.float32), "tta_steps": 99}, InvalidInputError),
    ],
)
def test_bad_requests_get_typed_errors(
    make_settings: SettingsFactory, request_kwargs: dict[str, Any], error: type[Exception]
) -> None:
    async def scenario() -> None:
        async with serving(make_settings(max_image_pixels=64 * 64)) as core:
            with pytest.raises(error):
                await core.reconstruct(ReconstructRequest(**request_kwargs))
            ok = await core.reconstruct(ReconstructRequest(np.zeros((8, 8, 3), np.float32)))
            assert ok.cube.shape == (8, 8, 31)

    run(scenario)


def test_overload_gets_queue_full_with_retry_hint(make_settings: SettingsFactory, frames: Frames) -> None:
    async def scenario() -> None:
        async with serving(make_settings(max_batch=1, max_queue=2, max_wait_ms=0)) as core:
            rgbs = frames(12, 32, 32, seed=2)
            results = await asyncio.gather(
                *(core.reconstruct(ReconstructRequest(x)) for x in rgbs), return_exceptions=True
            )
            refused = [r for r in results if isinstance(r, QueueFullError)]
            assert refused and all(r.retry_after_s > 0 for r in refused)
            assert len(refused) + sum(not isinstance(r, Exception) for r in results) == len(rgbs)
            assert sample(core, "mcga_requests_total", outcome="queue_full") == len(refused)

    run(scenario)


def test_deadline_and_client_cancellation(make_settings: SettingsFactory, frames: Frames) -> None:
    async def scenario() -> None:
        async with serving(make_settings(max_batch=1, max_wait_ms=0)) as core:
            big = frames(1, 200, 200, seed=3)[0]  # tiled: long enough to keep the device busy
            busy = asyncio.create_task(core.reconstruct(ReconstructRequest(big)))
            await asyncio.sleep(0.01)
            with pytest.raises(DeadlineExceededError):
                await core.reconstruct(ReconstructRequest(frames(1)[0], timeout_s=0.001))
            gone = asyncio.create_task(core.reconstruct(ReconstructRequest(frames(1)[0])))
            await asyncio.sleep(0.001)
            gone.cancel()
            assert (await busy).tiled
            with pytest.raises(asyncio.CancelledError):
                await gone
            assert sample(core, "mcga_requests_total", outcome="deadline_exceeded") == 1
            assert sample(core, "mcga_requests_total", outcome="cancelled") == 1

    run(scenario)


def test_reload_drops_no_request_and_resets_old_sessions(
    make_settings: SettingsFactory, other_weights: Path, frames: Frames
) -> None:
    async def scenario() -> None:
        async with serving(make_settings(max_batch=2)) as core:
            rgbs = frames(8, 16, 16, seed=4)
            first = await core.reconstruct(ReconstructRequest(rgbs[0], session_id="s"))
            old_version = first.model_version
            during = [asyncio.create_task(core.reconstruct(ReconstructRequest(x))) for x in rgbs]
            info = await core.reload(other_weights)
            answered = await asyncio.gather(*during)
            assert len(answered) == len(rgbs) and info.version != old_version
            assert {r.model_version for r in answered} <= {old_version, info.version}
            after = await core.reconstruct(ReconstructRequest(rgbs[1], session_id="s"))
            assert after.tta is TTAOutcome.RESET and after.model_version == info.version
            assert after.session_step == 1
            session = await core.session_info("s")
            assert session.resets == 1 and session.current_model and session.model_version == info.version
            with pytest.raises(ModelLoadError):  # a failed reload keeps serving the current weights
                await core.reload(other_weights.with_name("missing.pt"))
            still = await core.reconstruct(ReconstructRequest(rgbs[2]))
            assert still.model_version == info.version == core.model_info.version

    run(scenario)


def test_metrics_are_exposed(make_settings: SettingsFactory, frames: Frames) -> None:
    async def scenario() -> bytes:
        async with serving(make_settings()) as core:
            await core.reconstruct(ReconstructRequest(frames(1)[0], session_id="m"))
            assert (await core.readiness()).ready
            return generate_latest(core.metrics.registry)

    text = run(scenario).decode()
    for name in (
        "mcga_queue_depth",
        "mcga_batch_size_bucket",
        "mcga_queue_duration_seconds_bucket",
        "mcga_inference_duration_seconds_bucket",
        "mcga_tta_duration_seconds_bucket",
        'mcga_requests_total{outcome="ok"}',
        'mcga_tta_steps_total{outcome="adapted"}',
        "mcga_tta_entropy_bucket",
        'mcga_session_store_operations_total{op="cas",result="stored"}',
        "mcga_reprojection_error_bucket",
        "mcga_model_info{",
    ):
        assert name in text, name


def test_one_session_cannot_pile_up_frames(make_settings: SettingsFactory, frames: Frames) -> None:
    async def scenario() -> None:
        async with serving(make_settings(max_queue=3)) as core:
            burst = frames(8, 16, 16, seed=5)
            results = await asyncio.gather(
                *(core.reconstruct(ReconstructRequest(x, session_id="fast")) for x in burst),
                return_exceptions=True,
            )
            answered = [r for r in results if not isinstance(r, BaseException)]
            assert [type(r) for r in results[3:]] == [QueueFullError] * 5
            assert [r.session_step for r in answered] == [1, 2, 3]

    run(scenario)


def test_stop_finishes_accepted_frames_including_those_waiting_on_their_session(
    make_settings: SettingsFactory, frames: Frames
) -> None:
    """Frames of one session wait on its lock, outside the engine's queue: a drain must still answer
    them (and store their steps), and only frames arriving after the stop began are refused."""

    async def scenario() -> None:
        core = InferenceCore.build(make_settings())
        await core.start()
        rgbs = frames(4, 32, 32, seed=6)
        accepted = [
            asyncio.create_task(core.reconstruct(ReconstructRequest(x, session_id="draining")))
            for x in rgbs[:3]
        ]
        accepted.append(asyncio.create_task(core.reconstruct(ReconstructRequest(rgbs[3]))))
        await asyncio.sleep(0)  # every call has started: one session frame queued, two on the lock
        stopping = asyncio.create_task(core.stop(drain_timeout_s=60.0))
        await asyncio.sleep(0)
        with pytest.raises(NotReadyError):
            await core.reconstruct(ReconstructRequest(rgbs[0], session_id="late"))
        results = await asyncio.gather(*accepted)
        await stopping
        assert [r.session_step for r in results[:3]] == [1, 2, 3]
        assert all(r.tta is TTAOutcome.ADAPTED for r in results[:3]) and results[3].tta is TTAOutcome.NONE
        assert sample(core, "mcga_requests_total", outcome="not_ready") == 1

    run(scenario)
