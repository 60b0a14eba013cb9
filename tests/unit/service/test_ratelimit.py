"""The token bucket: bursts, refill, per-client isolation, bounded memory, and (hypothesis) that no
schedule of calls ever gets more than `burst + rate * elapsed` requests through."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.ratelimit import TokenBucketLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_at_rate() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(2.0, 3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)  # one token at 2/s
    clock.now = 0.25
    assert limiter.acquire("a") == pytest.approx(0.25)
    clock.now = 0.5
    assert limiter.acquire("a") == 0.0
    clock.now = 100.0  # refills only up to the burst
    assert [limiter.acquire("a") for _ in range(4)][-1] > 0


def test_clients_are_isolated() -> None:
    limiter = TokenBucketLimiter(1.0, 1, clock=Clock())
    assert limiter.acquire("a") == 0.0 and limiter.acquire("a") > 0
    assert limiter.acquire("b") == 0.0


def test_memory_is_bounded_and_active_clients_are_kept() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(1.0, 2, max_clients=100, clock=clock)
    for i in range(1000):  # a flood of one-off addresses, while one client keeps hammering
        limiter.acquire(f"addr-{i}")
        if i % 10 == 0:
            limiter.acquire("busy")
        clock.now += 0.0001
    assert len(limiter) <= 100
    assert limiter.acquire("busy") > 0  # still remembered as empty: the flood gave it no fresh burst


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (float("inf"), 1), (1.0, 0)])
def test_invalid_parameters(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucketLimiter(rate, burst)


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(0.5, 50),
    burst=st.integers(1, 20),
    gaps=st.lists(st.floats(0, 0.5), min_size=1, max_size=200),
)
def test_never_more_than_burst_plus_rate_times_elapsed(rate: float, burst: int, gaps: list[float]) -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(rate, burst, clock=clock)
    allowed = 0
    for gap in gaps:
        clock.now += gap
        wait = limiter.acquire("c")
        assert wait >= 0
        allowed += wait == 0
        assert allowed <= burst + rate * clock.now + 1e-6
    # and a refused client that waits as told gets through
    wait = limiter.acquire("c")
    clock.now += wait * (1 + 1e-9) + 1e-9
    assert limiter.acquire("c") == 0.0 or wait == 0
