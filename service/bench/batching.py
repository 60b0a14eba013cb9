"""Batching: throughput of closed-loop clients at each concurrency, dynamic batching on vs off.

Two real servers, identical but for `max_batch` (the configured batch, 8, against 1), take turns
round by round at each concurrency (1, 4, 16, 64 clients, frames of 256^2, NPY in and out); each
ratio is the median of the per-round ratios, their range reported beside it.
Targets: on CPU no loss from batching at any concurrency (ratio >= 1); on a GPU at least 3x the
throughput of batch 1 (at the highest concurrency).
"""

from __future__ import annotations

from service.bench.common import SectionResult, at_least, rgb_frame
from service.bench.config import BenchConfig
from service.bench.load import interleaved_rounds, median_throughput, paired_ratio
from service.bench.servers import ServerPool, ServerSpec
from service.client.convert import npy_bytes

CPU_TARGET = 1.0
GPU_TARGET = 3.0


def run_batching(cfg: BenchConfig, pool: ServerPool) -> SectionResult:
    res = SectionResult("batching")
    batched, single = ServerSpec(max_batch=cfg.max_batch), ServerSpec(max_batch=1)
    pool.start(batched, single)
    urls = {"batched": pool.get(batched).http, "unbatched": pool.get(single).http}
    body = npy_bytes(rgb_frame(cfg.batching_size, cfg.batching_size))
    gpu = cfg.device.startswith("cuda")
    levels: dict[str, dict[str, float | int]] = {}
    for c in cfg.concurrency:
        total = max(c * cfg.batch_requests_per_client, cfg.batch_min_requests)
        rounds = interleaved_rounds(urls, body, c, total, cfg.warmup, cfg.repeats)
        fps = {name: median_throughput(r) for name, r in rounds.items()}
        failed = sum(r.failed for rs in rounds.values() for r in rs)
        paired = paired_ratio(rounds["batched"], rounds["unbatched"])
        key = f"batched_over_unbatched_throughput_{c}"
        res.ratios[key] = paired.median
        levels[str(c)] = {
            "batched_fps": fps["batched"],
            "unbatched_fps": fps["unbatched"],
            "round_ratio_low": paired.low,
            "round_ratio_high": paired.high,
            "frames_per_round": total,
            "failed": failed,
        }
        res.checks.append(at_least(key, res.ratios[key], CPU_TARGET, not gpu and not cfg.quick))
    top = f"batched_over_unbatched_throughput_{max(cfg.concurrency)}"
    res.checks.append(at_least(f"{top} (GPU)", res.ratios[top], GPU_TARGET, gpu and not cfg.quick))
    res.data = {
        "size": cfg.batching_size,
        "max_batch": {"batched": cfg.max_batch, "unbatched": 1},
        "max_wait_ms": cfg.max_wait_ms,
        "concurrency": levels,
        "torch_threads": cfg.threads,
    }
    return res
