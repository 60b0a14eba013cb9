"""Per-client token buckets: `rate` requests per second on average, bursts of up to `burst`.

One `TokenBucketLimiter` per server (both edges share it, so a client cannot double its budget by
switching protocol); no global state. A bucket that has refilled is indistinguishable from a new
one, so idle clients are forgotten first when more than `max_clients` are tracked: memory stays
bounded however many addresses a hostile network presents.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_CLIENTS = 100_000


@dataclass
class _Bucket:
    tokens: float
    stamp: float  # clock reading when `tokens` was last brought up to date


class TokenBucketLimiter:
    """`acquire(client)` takes one token from the client's bucket: 0.0 when it could, else the
    seconds until one is available (the Retry-After to send). Not thread-safe: call it from the
    event loop only (it never blocks)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not rate > 0 or not math.isfinite(rate):
            raise ValueError(f"rate must be a positive number of requests per second, got {rate}")
        if burst < 1 or max_clients < 1:
            raise ValueError("burst and max_clients must be at least 1")
        self.rate, self.burst, self.max_clients = float(rate), burst, max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def acquire(self, client: str, cost: float = 1.0) -> float:
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = _Bucket(float(self.burst), now)
            self._forget_idle(now)
        else:
            self._buckets.move_to_end(client)
            self._refill(bucket, now)
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.rate

    def _refill(self, bucket: _Bucket, now: float) -> None:
        elapsed = max(0.0, now - bucket.stamp)
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
        bucket.stamp = now

    def _forget_idle(self, now: float) -> None:
        """Above `max_clients`: prune to 90% of it (amortised: one pass per 10% of new clients),
        dropping full buckets first (least recently used first), then the least recently used."""
        if len(self._buckets) <= self.max_clients:
            return
        target = max(1, self.max_clients * 9 // 10)
        for key in list(self._buckets)[:-1]:  # never the client being served
            if len(self._buckets) <= target:
                return
            bucket = self._buckets[key]
            self._refill(bucket, now)
            if bucket.tokens >= self.burst:
                del self._buckets[key]
        while len(self._buckets) > target:
            self._buckets.popitem(last=False)
