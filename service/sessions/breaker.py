"""A circuit breaker: after `failures` consecutive failures the store is skipped for `reset_s`,
then one trial call decides whether it closes again (so a dead Redis costs no timeouts per frame)."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures, self.reset_s, self._clock = failures, reset_s, clock
        self._count = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._trial_running or self._clock() - self._opened_at >= self.reset_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """Whether to call the store now; in half-open state, only one trial at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def record_success(self) -> None:
        self._count, self._opened_at, self._trial_running = 0, None, False

    def record_failure(self) -> None:
        self._count += 1
        if self._trial_running or self._count >= self.failures:
            self._opened_at = self._clock()
        self._trial_running = False

    def abandon(self) -> None:
        """A call that ended with neither verdict (cancelled): let the next one try."""
        self._trial_running = False
