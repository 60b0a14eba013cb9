"""Circuit breaker: opens after N failures, lets one trial through after the pause, closes on success."""

from __future__ import annotations

from service.sessions import BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_open_half_open_closed() -> None:
    clock = Clock()
    b = CircuitBreaker(failures=2, reset_s=5.0, clock=clock)
    assert b.allow()
    b.record_failure()
    assert b.state is BreakerState.CLOSED and b.allow()
    b.record_failure()
    assert b.state is BreakerState.OPEN and not b.allow()
    clock.now = 5.0
    assert b.allow()  # the one trial
    assert not b.allow()  # others wait for its verdict
    b.record_failure()
    assert b.state is BreakerState.OPEN and not b.allow()
    clock.now = 10.0
    assert b.allow()
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.allow()


def test_success_resets_the_count() -> None:
    b = CircuitBreaker(failures=2, reset_s=5.0, clock=Clock())
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.state is BreakerState.CLOSED


def test_abandoned_trial_frees_the_next() -> None:
    clock = Clock()
    b = CircuitBreaker(failures=1, reset_s=1.0, clock=clock)
    b.record_failure()
    clock.now = 1.0
    assert b.allow()
    b.abandon()  # the trial was cancelled
    assert b.allow()
