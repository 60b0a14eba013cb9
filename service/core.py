"""The inference core: what every front end calls. One instance per process, built in the lifespan.

`reconstruct` validates a decoded frame, runs it through the batching engine and, for a session,
loads its TTA state, adapts and writes it back with compare-and-set (re-running the frame on the
fresh state when another replica wrote first). A session's frames are serialised here, in arrival
order. The event loop only awaits: torch lives behind `Engine`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.contracts import (
    ModelInfo,
    ReconstructRequest,
    ReconstructResult,
    SessionInfo,
    Timings,
    TTAOutcome,
)
from service.engine import Done, Engine, WorkItem, WorkOutput
from service.errors import (
    DeadlineExceededError,
    InvalidInputError,
    NotReadyError,
    PayloadTooLargeError,
    QueueFullError,
    RequestCancelledError,
    ServiceError,
    SessionNotFoundError,
    SessionTooLargeError,
    StoreUnavailableError,
)
from service.metrics import Metrics
from service.sessions import KeyedLocks, SaveResult, SessionGateway, open_gateway
from service.settings import Settings

log = logging.getLogger(__name__)

SESSION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass(frozen=True)
class Readiness:
    model: bool  # weights loaded and warmed up
    store: bool | None  # Redis reachable; None without Redis
    store_required: bool = True  # settings.ready_requires_store

    @property
    def ready(self) -> bool:
        return self.model and (self.store is not False or not self.store_required)


class InferenceCore:
    def __init__(
        self, settings: Settings, engine: Engine, sessions: SessionGateway, metrics: Metrics
    ) -> None:
        self.settings, self.engine, self.sessions, self.metrics = settings, engine, sessions, metrics
        self._locks = KeyedLocks()
        # Frames accepted and not yet answered (some wait on their session's lock, outside the
        # engine's queue): `stop` lets them finish before it drains the engine.
        self._active, self._idle, self._closing = 0, asyncio.Event(), False
        self._idle.set()

    @classmethod
    def build(cls, settings: Settings, metrics: Metrics | None = None) -> InferenceCore:
        """The core for `settings`: Redis sessions when `REDIS_URL` is set, in-memory otherwise."""
        metrics = metrics or Metrics(enabled=settings.metrics_enabled)
        return cls(settings, Engine(settings, metrics), open_gateway(settings, metrics), metrics)

    async def start(self) -> None:
        await self.engine.start()

    async def stop(self, drain_timeout_s: float = 5.0) -> None:
        """Refuse new frames; finish accepted ones (within the drain time; a session's frames waiting
        on its lock included), then stop the engine, write back sessions kept locally, close the store."""
        self._closing = True
        deadline = time.monotonic() + drain_timeout_s
        try:
            await asyncio.wait_for(self._idle.wait(), drain_timeout_s)
        except TimeoutError:
            log.warning(
                "%d accepted frames still running after the %.3g s drain", self._active, drain_timeout_s
            )
        await self.engine.stop(max(0.0, deadline - time.monotonic()))
        await self.sessions.flush()
        await self.sessions.close()

    async def readiness(self) -> Readiness:
        store = await self.sessions.healthy() if self.settings.redis_url else None
        return Readiness(self.engine.ready, store, self.settings.ready_requires_store)

    @property
    def model_info(self) -> ModelInfo:
        return self.engine.info

    async def reload(self, weights: Path | None = None) -> ModelInfo:
        """Admin: swap weights without dropping requests; sessions of the old weights reset on next use."""
        return await self.engine.reload(weights)

    # ---- sessions --------------------------------------------------------------------------
    async def session_info(self, session_id: str) -> SessionInfo:
        self._check_session_id(session_id)
        found = await self.sessions.inspect(session_id)
        if found is None:
            raise SessionNotFoundError(f"no session {session_id!r}")
        record, source = found
        return await self.engine.describe_state(session_id, record.version, record.blob, source)

    async def reset_session(self, session_id: str) -> bool:
        """Forget a session's adaptation (its next frame starts from the trained parameters)."""
        self._check_session_id(session_id)
        async with self._locks.hold(session_id):
            return await self.sessions.delete(session_id)

    # ---- frames ----------------------------------------------------------------------------
    async def reconstruct(self, request: ReconstructRequest) -> ReconstructResult:
        start = time.monotonic()
        self._active += 1
        self._idle.clear()
        try:
            if self._closing:
                raise NotReadyError("the server is shutting down")
            result = await self._reconstruct(request, start)
        except ServiceError as exc:
            self.metrics.requests.labels(exc.code).inc()
            raise
        except asyncio.CancelledError:
            self.metrics.requests.labels(RequestCancelledError.code).inc()
            raise
        finally:
            self._active -= 1
            if self._active == 0:
                self._idle.set()
        self.metrics.requests.labels("ok").inc()
        self.metrics.request_seconds.observe(result.timings.total_s)
        return result

    def _check_session_id(self, session_id: str) -> None:
        if not SESSION_ID.fullmatch(session_id):
            raise InvalidInputError("session_id must be 1-128 characters of A-Z a-z 0-9 . _ : -")

    def _validate(self, req: ReconstructRequest) -> int:
        rgb = req.rgb
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise InvalidInputError(f"expected an (H, W, 3) array, got shape {getattr(rgb, 'shape', None)}")
        if not np.issubdtype(rgb.dtype, np.floating):
            raise InvalidInputError(f"expected float RGB in [0, 1], got dtype {rgb.dtype}")
        H, W, _ = rgb.shape
        if H < 1 or W < 1:
            raise InvalidInputError(f"empty image {H}x{W}")
        if self.settings.max_image_pixels < H * W:
            raise PayloadTooLargeError(f"{H}x{W} is above {self.settings.max_image_pixels} pixels")
        if req.session_id is not None:
            self._check_session_id(req.session_id)
        default = self.settings.default_tta_steps if req.session_id is not None else 0
        steps = default if req.tta_steps is None else req.tta_steps
        if not 0 <= steps <= self.settings.max_tta_steps:
            raise InvalidInputError(f"tta_steps must lie in [0, {self.settings.max_tta_steps}]")
        if req.timeout_s is not None and not req.timeout_s > 0:
            raise InvalidInputError("timeout_s must be positive")
        return steps

    async def _reconstruct(self, req: ReconstructRequest, start: float) -> ReconstructResult:
        steps = self._validate(req)
        timeout = min(req.timeout_s or math.inf, self.settings.request_timeout_s)
        deadline = start + timeout
        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                if req.session_id is None:
                    done = await self.engine.infer(
                        WorkItem(req.rgb, steps=steps), order_key=None, deadline=deadline
                    )
                    return self._finish(done, TTAOutcome(done.value.outcome), None, start)
                if self._locks.users(req.session_id) >= self.settings.max_queue:
                    raise QueueFullError(
                        f"session {req.session_id!r} has {self.settings.max_queue} frames waiting",
                        self.engine.retry_after_s(),
                    )
                async with self._locks.hold(req.session_id):
                    return await self._adapt(req.rgb, req.session_id, steps, deadline, start)
        except TimeoutError as exc:
            raise DeadlineExceededError(f"no result within {timeout:.3g} s") from exc

    async def _adapt(
        self, rgb: np.ndarray, session_id: str, steps: int, deadline: float, start: float
    ) -> ReconstructResult:
        """One session frame: load, run (and adapt), compare-and-set; re-run on a lost race."""
        done: Done[WorkOutput] | None = None
        for _ in range(self.settings.session_cas_retries + 1):
            try:
                snap = await self.sessions.load(session_id)
            except StoreUnavailableError:  # fallback "skip": trained parameters, no adaptation
                done = await self.engine.infer(WorkItem(rgb), order_key=session_id, deadline=deadline)
                return self._finish(done, TTAOutcome.SKIPPED_STORE_UNAVAILABLE, None, start)
            item = WorkItem(rgb, session=True, state=snap.blob, steps=steps)
            done = await self.engine.infer(item, order_key=session_id, deadline=deadline)
            out = done.value
            if out.state is None:  # nothing changed (tta_steps=0, or the step was dropped)
                return self._finish(done, TTAOutcome(out.outcome), out.step, start)
            try:
                saved = await self.sessions.save(session_id, snap, out.state)
            except SessionTooLargeError:
                log.exception("session %s not stored", session_id)
                return self._finish(done, TTAOutcome.DROPPED, None, start)
            if saved is SaveResult.CONFLICT:
                continue
            outcome = {
                SaveResult.STORED: TTAOutcome(out.outcome),
                SaveResult.LOCAL: TTAOutcome.KEPT_LOCAL,
                SaveResult.SKIPPED: TTAOutcome.SKIPPED_STORE_UNAVAILABLE,
            }[saved]
            return self._finish(done, outcome, None if saved is SaveResult.SKIPPED else out.step, start)
        assert done is not None
        log.warning("session %s: every compare-and-set lost a race; frame answered unadapted", session_id)
        return self._finish(done, TTAOutcome.SKIPPED_CONFLICT, None, start)

    def _finish(
        self, done: Done[WorkOutput], outcome: TTAOutcome, step: int | None, start: float
    ) -> ReconstructResult:
        out, m = done.value, self.metrics
        m.tta_steps.labels(outcome.value).inc()
        if out.entropy is not None:
            m.tta_entropy.observe(out.entropy)
        if out.tta_s > 0:
            m.tta_seconds.observe(out.tta_s)
        if out.reprojection_error is not None:
            m.reprojection_error.observe(out.reprojection_error)
        return ReconstructResult(
            cube=out.cube_hwc,
            wavelengths_nm=out.wavelengths_nm,
            model_version=out.model_version,
            tta=outcome,
            session_step=step,
            entropy=out.entropy,
            reprojection_error=out.reprojection_error,
            tiled=out.tiled,
            timings=Timings(done.queue_s, out.inference_s, out.tta_s, time.monotonic() - start),
        )
