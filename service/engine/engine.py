"""The engine: one device worker thread, the runner it owns, and the batcher feeding it.

Everything that touches torch (loading, warm-up, batches, session (de)serialisation, reloads) is a
job on the single worker thread, so jobs never overlap and the event loop only awaits them. A reload
is one more job between two batches: queued requests wait for it instead of being dropped, and run
on the new weights.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar, cast

from service.contracts import ModelInfo, SessionInfo
from service.engine.batcher import Batcher, Done
from service.engine.codec import CodecError, decode_state
from service.engine.runner import Runner, needs_tiling
from service.engine.work import WorkItem, WorkOutput
from service.errors import InternalError, NotReadyError, ServiceError
from service.metrics import Metrics
from service.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


class Engine:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings, self.metrics = settings, metrics
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcga-device")
        self._runner: Runner | None = None
        self._batcher: Batcher[WorkItem, WorkOutput] = Batcher(
            self._process,
            max_batch=settings.max_batch,
            max_wait_s=settings.max_wait_s,
            max_queue=settings.max_queue,
            metrics=metrics,
            group_limit=self._group_limit,
        )

    async def _job(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @property
    def ready(self) -> bool:
        return self._runner is not None

    @property
    def info(self) -> ModelInfo:
        return self._live_runner().info

    @property
    def queue_depth(self) -> int:
        return self._batcher.depth

    def retry_after_s(self) -> float:
        return self._batcher.retry_after_s()

    def _live_runner(self) -> Runner:
        if self._runner is None:
            raise NotReadyError("the model is not loaded yet")
        return self._runner

    async def start(self) -> None:
        """Load the weights and warm up on the worker thread, then accept requests."""
        await self._job(self._load, None)
        self._batcher.start()

    async def stop(self, drain_timeout_s: float = 0.0) -> None:
        await self._batcher.stop(drain_timeout_s)
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)

    async def reload(self, weights: Path | None = None) -> ModelInfo:
        """Swap the weights between two batches; a failed load keeps the old ones."""
        return await self._job(self._load, weights)

    def _load(self, weights: Path | None) -> ModelInfo:
        """Worker thread: build and warm up a runner, then swap it in, so the next batch job uses it."""
        runner = Runner(self.settings, self.metrics, weights)
        runner.warmup()
        self._runner = runner
        info = runner.info
        self.metrics.model_info.clear()
        self.metrics.model_info.labels(info.version, info.device).set(1)
        return info

    def _group_limit(self, group: Hashable) -> int:
        """Frames per pass for a shape group: within the runner's pixel budget (`max_batch_pixels`)."""
        is_shape = isinstance(group, tuple) and len(group) == 2 and all(isinstance(v, int) for v in group)
        if not is_shape:  # a tiled frame
            return self.settings.max_batch
        return self._live_runner().frames_per_pass(cast(tuple[int, int], group))

    def group_key(self, height: int, width: int) -> Hashable:
        """Frames batch together when they pad to one shape; a tiled frame is a batch of its own."""
        if needs_tiling(height, width, self.settings.tile_size):
            return ("tiled", uuid.uuid4().hex)
        return self._live_runner().padded_shape(height, width)

    async def infer(self, item: WorkItem, *, order_key: Hashable | None, deadline: float) -> Done[WorkOutput]:
        H, W, _ = item.rgb_hwc.shape
        item.watch.deadline = deadline
        try:
            return await self._batcher.submit(
                item, group=self.group_key(H, W), order_key=order_key, deadline=deadline
            )
        except asyncio.CancelledError:  # the client left or its deadline fired: stop the frame early
            item.watch.abandoned = True
            raise

    async def _process(self, items: list[WorkItem]) -> Sequence[WorkOutput | ServiceError]:
        start = time.perf_counter()
        try:
            return await self._job(lambda: self._live_runner().run(items))
        finally:
            self.metrics.inference_seconds.observe(time.perf_counter() - start)

    async def describe_state(self, session_id: str, version: int, blob: bytes, source: str) -> SessionInfo:
        """Decode a stored state (on the worker thread) into what `GET /sessions/{id}` shows."""

        def describe() -> SessionInfo:
            try:
                decoded = decode_state(blob)
            except CodecError as exc:
                raise InternalError(f"session {session_id!r} holds an unreadable state (reset it)") from exc
            s = decoded.state
            return SessionInfo(
                session_id=session_id,
                version=version,
                step=s.step,
                resets=s.resets,
                model_version=decoded.model_version,
                current_model=decoded.model_version == self._live_runner().version,
                mean_first_entropy=_mean(s.first_entropies),
                mean_recent_entropy=_mean(s.recent_entropies),
                size_bytes=len(blob),
                source=source,
            )

        return await self._job(describe)
