"""An asyncio micro-batcher: bounded queue, two limits, grouping, deadlines, per-key order.

Requests wait in one FIFO queue. A batch is the oldest eligible requests of one group (same padded
shape) and is dispatched when it holds `max_batch` requests or its oldest request has waited
`max_wait_s`. A request is eligible only if no earlier queued request has the same order key
(a session), so a session's frames run one at a time in arrival order. One batch runs at a time:
`process` hands it to the device worker; the event loop only awaits. Requests cancelled by their
client or past their deadline are dropped before they reach the device. The batcher checks its own
invariant: one result per request, or the whole batch fails with `BatchInvariantError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from service.errors import (
    BatchInvariantError,
    DeadlineExceededError,
    InternalError,
    NotReadyError,
    QueueFullError,
    ServiceError,
)
from service.metrics import Metrics

log = logging.getLogger(__name__)

P = TypeVar("P")
R = TypeVar("R")

ProcessFn = Callable[[list[P]], Awaitable[Sequence[R | BaseException]]]


@dataclass(frozen=True)
class Done(Generic[R]):
    """A request's result with what the batcher saw of it."""

    value: R
    queue_s: float
    batch_size: int


@dataclass(eq=False)
class _Pending(Generic[P, R]):
    payload: P
    group: Hashable
    order_key: Hashable | None
    deadline: float
    enqueued: float
    future: asyncio.Future[Done[R]]
    dispatched: float = field(default=0.0)


class Batcher(Generic[P, R]):
    def __init__(
        self,
        process: ProcessFn[P, R],
        *,
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
        metrics: Metrics | None = None,
        group_limit: Callable[[Hashable], int] | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_s < 0:
            raise ValueError("max_batch and max_queue must be >= 1, max_wait_s >= 0")
        self._process = process
        self._group_limit = group_limit  # a group's own cap below max_batch (e.g. a pixel budget)
        self.max_batch, self.max_wait_s, self.max_queue = max_batch, max_wait_s, max_queue
        self._metrics = metrics or Metrics()
        self._queue: list[_Pending[P, R]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        self._closing = False
        self._batch_s = 0.05  # running mean of batch durations, for the Retry-After hint

    @property
    def depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="mcga-batcher")

    async def stop(self, drain_timeout_s: float = 0.0) -> None:
        """Refuse new work, let queued work finish for up to `drain_timeout_s`, then fail the rest."""
        self._closing = True
        deadline = time.monotonic() + drain_timeout_s
        while (self._queue or self._busy) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for item in self._queue:
            if not item.future.done():
                item.future.set_exception(NotReadyError("the server is shutting down"))
        self._queue.clear()
        self._metrics.queue_depth.set(0)

    def retry_after_s(self) -> float:
        """How long until the queue has likely drained a batch's worth: the hint sent with a 429."""
        batches_ahead = math.ceil(len(self._queue) / self.max_batch) + 1
        return max(0.1, min(60.0, batches_ahead * self._batch_s))

    async def submit(
        self, payload: P, *, group: Hashable, order_key: Hashable | None = None, deadline: float
    ) -> Done[R]:
        """Queue one request and wait for its result; `deadline` is on the `time.monotonic` clock."""
        if self._closing or self._task is None:
            raise NotReadyError("the batcher is not running")
        if len(self._queue) >= self.max_queue:
            self._purge(time.monotonic())
        if len(self._queue) >= self.max_queue:
            self._metrics.dropped.labels("queue_full").inc()
            raise QueueFullError(f"queue full ({self.max_queue} waiting)", self.retry_after_s())
        future: asyncio.Future[Done[R]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(payload, group, order_key, deadline, time.monotonic(), future))
        self._metrics.queue_depth.set(len(self._queue))
        self._wakeup.set()
        return await future  # cancelling the caller cancels `future`: the item is dropped

    def _purge(self, now: float) -> None:
        kept: list[_Pending[P, R]] = []
        for item in self._queue:
            if item.future.done():  # the caller went away: gave up, or its own deadline timer fired
                self._metrics.dropped.labels("deadline" if now >= item.deadline else "cancelled").inc()
            elif now >= item.deadline:
                self._metrics.dropped.labels("deadline").inc()
                item.future.set_exception(DeadlineExceededError("deadline passed while queued"))
            else:
                kept.append(item)
        self._queue = kept

    def _eligible_groups(self) -> dict[Hashable, list[_Pending[P, R]]]:
        """Eligible requests by group, each list in arrival order; dict order = oldest first."""
        groups: dict[Hashable, list[_Pending[P, R]]] = {}
        seen: set[Hashable] = set()
        for item in self._queue:
            if item.order_key is not None:
                if item.order_key in seen:
                    continue
                seen.add(item.order_key)
            groups.setdefault(item.group, []).append(item)
        return groups

    def _pick(self, now: float) -> tuple[list[_Pending[P, R]] | None, float]:
        """A batch ready to run, or None and how long to wait before looking again."""
        groups = self._eligible_groups()
        wait = math.inf
        for key, items in groups.items():
            limit = self.max_batch
            if self._group_limit is not None:
                limit = max(1, min(limit, self._group_limit(key)))
            ready_at = items[0].enqueued + self.max_wait_s
            if len(items) >= limit or now >= ready_at:
                return items[:limit], 0.0
            wait = min(wait, ready_at - now)
        return None, wait

    async def _next_batch(self) -> list[_Pending[P, R]]:
        while True:
            now = time.monotonic()
            self._purge(now)
            self._metrics.queue_depth.set(len(self._queue))
            batch, wait = self._pick(now)
            if batch is not None:
                taken = set(map(id, batch))
                self._queue = [it for it in self._queue if id(it) not in taken]
                self._metrics.queue_depth.set(len(self._queue))
                return batch
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), None if math.isinf(wait) else wait)

    async def _run(self) -> None:
        while True:
            batch = await self._next_batch()
            self._busy = True
            try:
                await self._dispatch(batch)
            finally:
                self._busy = False
                for item in batch:  # only when stopped mid-batch
                    if not item.future.done():
                        item.future.set_exception(NotReadyError("the server is shutting down"))

    async def _dispatch(self, batch: list[_Pending[P, R]]) -> None:
        start = time.monotonic()
        for item in batch:
            item.dispatched = start
            self._metrics.queue_seconds.observe(start - item.enqueued)
        self._metrics.batch_size.observe(len(batch))
        try:
            results = await self._process([item.payload for item in batch])
            if len(results) != len(batch):
                raise BatchInvariantError(f"batch of {len(batch)} gave {len(results)} results")
        except Exception as exc:
            log.exception("batch of %d failed", len(batch))
            err = exc if isinstance(exc, ServiceError) else InternalError("inference failed")
            results = [err] * len(batch)
        elapsed = time.monotonic() - start
        self._batch_s = 0.8 * self._batch_s + 0.2 * elapsed
        for item, result in zip(batch, results, strict=True):
            if item.future.done():  # cancelled while on the device: nobody to answer
                self._metrics.dropped.labels("cancelled_running").inc()
            elif isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(Done(result, item.dispatched - item.enqueued, len(batch)))
