"""Closed-loop HTTP load: `concurrency` clients, each sending its next frame when the last one is
answered, against `POST /reconstruct` (NPY in, NPY out). Throughput counts answered frames only."""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Round:
    frames_per_s: float
    ok: int
    failed: int
    seconds: float


def post_frame(client: httpx.Client, body: bytes, fmt: str = "npy") -> bytes:
    """One `POST /reconstruct`; the whole response body read (what a client waits for)."""
    response = client.post(
        "/reconstruct", content=body, params={"format": fmt}, headers={"Content-Type": "application/x-npy"}
    )
    if response.status_code != 200:
        raise RuntimeError(f"POST /reconstruct answered {response.status_code}: {response.text[:200]}")
    return response.content


async def _round(client: httpx.AsyncClient, body: bytes, concurrency: int, total: int) -> Round:
    remaining = total
    ok = failed = 0

    async def worker() -> None:
        nonlocal remaining, ok, failed
        while remaining > 0:
            remaining -= 1
            try:
                response = await client.post(
                    "/reconstruct",
                    content=body,
                    params={"format": "npy"},
                    headers={"Content-Type": "application/x-npy"},
                )
                await response.aread()
                ok, failed = (ok + 1, failed) if response.status_code == 200 else (ok, failed + 1)
            except httpx.HTTPError:
                failed += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - start
    return Round(ok / seconds if seconds > 0 else 0.0, ok, failed, seconds)


async def _interleaved(
    urls: Mapping[str, str], body: bytes, concurrency: int, total: int, warmup: int, repeats: int
) -> dict[str, list[Round]]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            name: await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, limits=limits, timeout=TIMEOUT_S)
            )
            for name, url in urls.items()
        }
        for _ in range(warmup):  # opens the connections; the servers' first batches are not counted
            for client in clients.values():
                await _round(client, body, concurrency, concurrency)
        rounds: dict[str, list[Round]] = {name: [] for name in urls}
        for i in range(repeats):
            for name in turn_order(list(clients), i):
                rounds[name].append(await _round(clients[name], body, concurrency, total))
        return rounds


def interleaved_rounds(
    urls: Mapping[str, str], body: bytes, concurrency: int, total: int, warmup: int = 1, repeats: int = 1
) -> dict[str, list[Round]]:
    """Per server (by name), `repeats` rounds of `total` frames over `concurrency` connections; the
    servers take turns round by round, after `warmup` short rounds each."""
    return asyncio.run(_interleaved(urls, body, concurrency, total, warmup, repeats))


def turn_order(names: list[str], round_index: int) -> list[str]:
    """Who goes first alternates round by round (A B, B A, ...), so neither server always runs right
    after the other has warmed the caches or heated the machine."""
    return names if round_index % 2 == 0 else names[::-1]


def median_throughput(rounds: list[Round]) -> float:
    return round(statistics.median(r.frames_per_s for r in rounds), 3)


@dataclass(frozen=True)
class PairedRatio:
    """Throughput of A over B, round by round: the median and the range of the per-round ratios.

    Each round's pair ran back to back, so slow drift of a shared machine cancels within a pair;
    the range says how far one round's ratio can stray, i.e. what a single run could have shown.
    """

    median: float
    low: float
    high: float
    rounds: int


def paired_ratio(a: list[Round], b: list[Round]) -> PairedRatio:
    if len(a) != len(b) or not a:
        raise ValueError(f"need the same, non-zero number of rounds, got {len(a)} and {len(b)}")
    ratios = [
        x.frames_per_s / y.frames_per_s if y.frames_per_s else math.nan for x, y in zip(a, b, strict=True)
    ]
    return PairedRatio(
        round(statistics.median(ratios), 3), round(min(ratios), 3), round(max(ratios), 3), len(ratios)
    )
