"""Batcher: both limits, grouping, overflow, deadlines, cancellation, per-key order, invariants."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import pytest

from service.engine.batcher import Batcher, Done
from service.errors import BatchInvariantError, DeadlineExceededError, InvalidInputError, QueueFullError
from service.metrics import Metrics

T = TypeVar("T")


class Device:
    """A stand-in worker: records each batch, optionally holds it until released."""

    def __init__(self, hold: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()
        if not hold:
            self.gate.set()
        self.started = asyncio.Event()

    async def process(self, items: list[str]) -> Sequence[str | BaseException]:
        self.batches.append(list(items))
        self.started.set()
        await self.gate.wait()
        return [it.upper() for it in items]


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), timeout=20))


def make(device: Device, **kw: Any) -> tuple[Batcher[str, str], Metrics]:
    metrics = Metrics()
    params: dict[str, Any] = {"max_batch": 4, "max_wait_s": 0.02, "max_queue": 16} | kw
    batcher: Batcher[str, str] = Batcher(device.process, metrics=metrics, **params)
    batcher.start()
    return batcher, metrics


def far() -> float:
    return time.monotonic() + 60


def counter(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def test_max_batch_splits_a_burst() -> None:
    async def scenario() -> list[list[str]]:
        device = Device()
        batcher, metrics = make(device, max_batch=3, max_wait_s=0.05)
        results = await asyncio.gather(
            *(batcher.submit(f"r{i}", group="g", deadline=far()) for i in range(7))
        )
        assert [r.value for r in results] == [f"R{i}" for i in range(7)]
        assert counter(metrics, "mcga_batch_size_count") == 3
        await batcher.stop()
        return device.batches

    assert run(scenario) == [["r0", "r1", "r2"], ["r3", "r4", "r5"], ["r6"]]


def test_max_wait_bounds_a_lone_request() -> None:
    async def scenario() -> float:
        batcher, _ = make(Device(), max_batch=8, max_wait_s=0.1)
        t0 = time.monotonic()
        done = await batcher.submit("x", group="g", deadline=far())
        elapsed = time.monotonic() - t0
        assert done.batch_size == 1 and done.queue_s >= 0.09
        await batcher.stop()
        return elapsed

    assert 0.09 <= run(scenario) < 1.0


def test_full_batch_does_not_wait() -> None:
    async def scenario() -> float:
        batcher, _ = make(Device(), max_batch=2, max_wait_s=5.0)
        t0 = time.monotonic()
        await asyncio.gather(*(batcher.submit(x, group="g", deadline=far()) for x in "ab"))
        await batcher.stop()
        return time.monotonic() - t0

    assert run(scenario) < 1.0


def test_batches_hold_one_group_each() -> None:
    async def scenario() -> list[list[str]]:
        device = Device()
        batcher, _ = make(device, max_batch=8, max_wait_s=0.05)
        jobs = [batcher.submit(f"{g}{i}", group=g, deadline=far()) for i in range(3) for g in "ab"]
        await asyncio.gather(*jobs)
        await batcher.stop()
        return device.batches

    assert sorted(run(scenario)) == [["a0", "a1", "a2"], ["b0", "b1", "b2"]]


def test_a_group_limit_caps_its_batches_and_a_full_capped_batch_does_not_wait() -> None:
    async def scenario() -> list[list[str]]:
        device = Device()
        limits = {"big": 1, "small": 3}
        batcher, _ = make(device, max_batch=8, max_wait_s=5.0, group_limit=lambda g: limits[g])
        jobs = [batcher.submit(f"{g}{i}", group=g, deadline=far()) for i in range(3) for g in limits]
        await asyncio.wait_for(asyncio.gather(*jobs), timeout=2.0)
        await batcher.stop()
        return device.batches

    batches = run(scenario)
    assert sorted(b for b in batches if b[0].startswith("big")) == [["big0"], ["big1"], ["big2"]]
    assert [b for b in batches if b[0].startswith("small")] == [["small0", "small1", "small2"]]


def test_full_queue_raises_with_retry_hint() -> None:
    async def scenario() -> QueueFullError:
        device = Device(hold=True)
        batcher, metrics = make(device, max_batch=1, max_queue=2, max_wait_s=0.0)
        running = asyncio.create_task(batcher.submit("busy", group="g", deadline=far()))
        await device.started.wait()  # "busy" is on the device; two more fill the queue
        queued = [asyncio.create_task(batcher.submit(x, group="g", deadline=far())) for x in "ab"]
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFullError) as info:
            await batcher.submit("c", group="g", deadline=far())
        assert counter(metrics, "mcga_queue_dropped_total", reason="queue_full") == 1
        assert counter(metrics, "mcga_queue_depth") == 2
        device.gate.set()
        assert [d.value for d in await asyncio.gather(running, *queued)] == ["BUSY", "A", "B"]
        await batcher.stop()
        return info.value

    err = run(scenario)
    assert err.http_status == 429 and err.grpc_code == "RESOURCE_EXHAUSTED" and err.retry_after_s > 0


def test_expired_request_never_reaches_the_device() -> None:
    async def scenario() -> Device:
        device = Device(hold=True)
        batcher, metrics = make(device, max_batch=1, max_wait_s=0.0)
        running = asyncio.create_task(batcher.submit("busy", group="g", deadline=far()))
        await device.started.wait()
        late = asyncio.create_task(batcher.submit("late", group="g", deadline=time.monotonic() + 0.05))
        await asyncio.sleep(0.1)
        device.gate.set()
        with pytest.raises(DeadlineExceededError):
            await late
        await running
        assert counter(metrics, "mcga_queue_dropped_total", reason="deadline") == 1
        await batcher.stop()
        return device

    assert run(scenario).batches == [["busy"]]


def test_request_its_caller_timed_out_at_the_deadline_counts_as_a_deadline_drop() -> None:
    """The core wraps submit in asyncio.timeout(deadline): its timer cancels the future before the
    batcher's own check, so the drop must be told apart from a client that went away by the time."""

    async def scenario() -> None:
        device = Device(hold=True)
        batcher, metrics = make(device, max_batch=1, max_wait_s=0.0)
        running = asyncio.create_task(batcher.submit("busy", group="g", deadline=far()))
        await device.started.wait()
        deadline = time.monotonic() + 0.05
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(deadline - time.monotonic()):
                await batcher.submit("late", group="g", deadline=deadline)
        device.gate.set()
        await running
        assert counter(metrics, "mcga_queue_dropped_total", reason="deadline") == 1
        assert counter(metrics, "mcga_queue_dropped_total", reason="cancelled") == 0
        await batcher.stop()

    run(scenario)


def test_cancelled_request_is_dropped() -> None:
    async def scenario() -> Device:
        device = Device(hold=True)
        batcher, metrics = make(device, max_batch=4, max_wait_s=0.0)
        running = asyncio.create_task(batcher.submit("busy", group="g", deadline=far()))
        await device.started.wait()
        gone = asyncio.create_task(batcher.submit("gone", group="g", deadline=far()))
        kept = asyncio.create_task(batcher.submit("kept", group="g", deadline=far()))
        await asyncio.sleep(0.01)
        gone.cancel()  # the client went away while its request was queued
        await asyncio.sleep(0.01)
        device.gate.set()
        assert (await kept).value == "KEPT"
        await running
        assert gone.cancelled()
        assert counter(metrics, "mcga_queue_dropped_total", reason="cancelled") == 1
        await batcher.stop()
        return device

    assert run(scenario).batches == [["busy"], ["kept"]]


def test_one_key_runs_in_arrival_order_one_per_batch() -> None:
    async def scenario() -> list[list[str]]:
        device = Device()
        batcher, _ = make(device, max_batch=8, max_wait_s=0.02)
        # Session s alternates between two shapes (groups); t is another session.
        jobs = [
            batcher.submit("s1", group="small", order_key="s", deadline=far()),
            batcher.submit("s2", group="large", order_key="s", deadline=far()),
            batcher.submit("t1", group="large", order_key="t", deadline=far()),
            batcher.submit("s3", group="small", order_key="s", deadline=far()),
            batcher.submit("n1", group="small", deadline=far()),
        ]
        await asyncio.gather(*jobs)
        await batcher.stop()
        return device.batches

    batches = run(scenario)
    order = [x for batch in batches for x in batch if x.startswith("s")]
    assert order == ["s1", "s2", "s3"]
    for batch in batches:
        assert sum(x.startswith("s") for x in batch) <= 1


def test_result_count_mismatch_fails_the_batch() -> None:
    async def short(items: list[str]) -> Sequence[str | BaseException]:
        return items[:-1]

    async def scenario() -> None:
        batcher: Batcher[str, str] = Batcher(short, max_batch=2, max_wait_s=0.05, max_queue=4)
        batcher.start()
        results = await asyncio.gather(
            *(batcher.submit(x, group="g", deadline=far()) for x in "ab"), return_exceptions=True
        )
        assert all(isinstance(r, BatchInvariantError) for r in results)
        await batcher.stop()

    run(scenario)


def test_per_item_errors_reach_only_their_request() -> None:
    async def picky(items: list[str]) -> Sequence[str | BaseException]:
        return [InvalidInputError("bad") if x == "bad" else x for x in items]

    async def scenario() -> list[Done[str] | BaseException]:
        batcher: Batcher[str, str] = Batcher(picky, max_batch=2, max_wait_s=0.05, max_queue=4)
        batcher.start()
        out = await asyncio.gather(
            *(batcher.submit(x, group="g", deadline=far()) for x in ("ok", "bad")), return_exceptions=True
        )
        await batcher.stop()
        return out

    ok, bad = run(scenario)
    assert isinstance(ok, Done) and ok.value == "ok" and ok.batch_size == 2
    assert isinstance(bad, InvalidInputError)


def test_stop_drains_then_refuses() -> None:
    async def scenario() -> None:
        device = Device()
        batcher, _ = make(device, max_wait_s=0.05)
        job = asyncio.create_task(batcher.submit("last", group="g", deadline=far()))
        await asyncio.sleep(0)
        await batcher.stop(drain_timeout_s=5.0)
        assert (await job).value == "LAST"
        with pytest.raises(Exception, match="not running"):
            await batcher.submit("late", group="g", deadline=far())

    run(scenario)
