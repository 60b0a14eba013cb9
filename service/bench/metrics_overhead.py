"""Metrics and logging overhead: throughput with Prometheus metrics and the per-request access log
on (the default) against both off (`MCGA_METRICS_ENABLED=false`, uvicorn's access log silenced).

Two otherwise identical servers take turns round by round (interleaved, the first alternating, so
drift on a shared machine hits both alike), with small frames at a few concurrent clients: there the
per-request costs weigh most. The figure is the median of the per-round on/off ratios over
`metrics_rounds` pairs (a single pair on this 2-core machine strays by +-10%, more than the effect
looked for); their range is reported beside it. Target: on/off throughput within 5% (ratio >= 0.95).
"""

from __future__ import annotations

import httpx

from service.bench.common import SectionResult, at_least, rgb_frame
from service.bench.config import BenchConfig
from service.bench.load import interleaved_rounds, median_throughput, paired_ratio
from service.bench.servers import ServerPool, ServerSpec
from service.client.convert import npy_bytes

TARGET = 0.95


def run_metrics_overhead(cfg: BenchConfig, pool: ServerPool) -> SectionResult:
    res = SectionResult("metrics")
    on, off = ServerSpec(max_batch=cfg.max_batch), ServerSpec(max_batch=cfg.max_batch, metrics=False)
    pool.start(on, off)
    urls = {"on": pool.get(on).http, "off": pool.get(off).http}
    if httpx.get(f"{urls['off']}/metrics", timeout=30).text.strip():
        raise RuntimeError("the metrics-off server still exposes metrics")
    body = npy_bytes(rgb_frame(cfg.metrics_size, cfg.metrics_size))
    rounds = interleaved_rounds(
        urls, body, cfg.metrics_concurrency, cfg.metrics_requests, cfg.warmup, cfg.metrics_rounds
    )
    fps = {name: median_throughput(r) for name, r in rounds.items()}
    paired = paired_ratio(rounds["on"], rounds["off"])
    value = paired.median
    res.ratios["metrics_on_over_off_throughput"] = value
    res.data = {
        "size": cfg.metrics_size,
        "concurrency": cfg.metrics_concurrency,
        "frames_per_round": cfg.metrics_requests,
        "rounds": paired.rounds,
        "on_fps": fps["on"],
        "off_fps": fps["off"],
        "round_ratio_low": paired.low,
        "round_ratio_high": paired.high,
        "failed": sum(r.failed for rs in rounds.values() for r in rs),
    }
    res.checks.append(at_least("metrics_on_over_off_throughput", value, TARGET, not cfg.quick))
    return res
