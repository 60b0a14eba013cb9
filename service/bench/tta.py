"""Test-time adaptation through the service's runner (the device worker's code path, no HTTP).

At 128^2, taking turns: a plain frame; one session's adapting frame (its state decoded, one step,
encoded, as the core does frame after frame); 8 sessions adapting in one batch (one forward and one
backward per pass for all its sessions, per-sample GA parameters; the runner splits the batch into
passes within its pixel budget as it does in the service: 2 passes of 4 on CPU, one on CUDA); the
same 8 sessions one by one. Targets: an adapting
frame costs at most 3x a plain one; the batch of 8 at least 1.5x faster than one by one on CPU
(4x on a GPU).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from model.bench import interleaved
from service.bench.common import (
    BenchWeights,
    SectionResult,
    at_least,
    at_most,
    median_ms,
    ratio,
    rgb_frame,
)
from service.bench.config import BenchConfig
from service.engine.runner import Runner
from service.engine.work import WorkItem, WorkOutput
from service.errors import ServiceError
from service.metrics import Metrics
from service.settings import Settings

ADAPT_TARGET = 3.0
BATCH_TARGET_CPU = 1.5
BATCH_TARGET_GPU = 4.0


def _outputs(runner: Runner, items: list[WorkItem]) -> list[WorkOutput]:
    outs = runner.run(items)
    for out in outs:
        if isinstance(out, ServiceError):
            raise RuntimeError(f"runner failed: {out.message}")
    return [o for o in outs if not isinstance(o, ServiceError)]


class Sessions:
    """Sessions that adapt one step per frame, each carrying its state forward as the core would."""

    def __init__(self, runner: Runner, frames: list[np.ndarray], outcomes: Counter[str]) -> None:
        self.runner, self.frames, self.outcomes = runner, frames, outcomes
        self.states: list[bytes | None] = [None] * len(frames)

    def _step(self, idx: list[int]) -> None:
        items = [WorkItem(self.frames[i], session=True, state=self.states[i], steps=1) for i in idx]
        for i, out in zip(idx, _outputs(self.runner, items), strict=True):
            self.outcomes[out.outcome] += 1
            if out.state is not None:
                self.states[i] = out.state

    def together(self) -> None:
        self._step(list(range(len(self.frames))))

    def one_by_one(self) -> None:
        for i in range(len(self.frames)):
            self._step([i])


def run_tta(cfg: BenchConfig, weights: BenchWeights) -> SectionResult:
    res = SectionResult("tta")
    side, n = cfg.tta_size, cfg.tta_sessions
    settings = Settings(
        weights=weights.path,
        device=cfg.device,
        torch_threads=cfg.threads,
        warmup_size=min(cfg.server_warmup_size, side),
        tile_size=max(cfg.tile_size, side),
        tile_overlap=cfg.tile_overlap,
        max_batch=n,
        redis_url=None,
    )
    runner = Runner(settings, Metrics(enabled=False))
    runner.warmup()
    frames = [rgb_frame(side, side, seed=i) for i in range(n)]
    outcomes: Counter[str] = Counter()
    single = Sessions(runner, frames[:1], outcomes)
    batched, sequential = Sessions(runner, frames, outcomes), Sessions(runner, frames, outcomes)
    times = interleaved(
        {
            "plain_frame": lambda: _outputs(runner, [WorkItem(frames[0])]),
            "adapting_frame": single.together,
            f"batch_{n}_adapting": batched.together,
            f"sequential_{n}_adapting": sequential.one_by_one,
        },
        cfg.warmup,
        cfg.repeats,
    )
    ms = {name: median_ms(t) for name, t in times.items()}
    res.data = {
        "size": side,
        "sessions": n,
        "sessions_per_pass": runner.frames_per_pass(runner.padded_shape(side, side)),
        "steps_per_frame": 1,
        "median_ms": ms,
        "outcomes": dict(outcomes),
        "device": str(runner.device),
        "torch_threads": cfg.threads,
    }
    adapt = ratio(ms["adapting_frame"], ms["plain_frame"])
    batch = ratio(ms[f"sequential_{n}_adapting"], ms[f"batch_{n}_adapting"])
    res.ratios = {"adapt_over_plain_frame": adapt, f"sequential_over_batched_tta_{n}": batch}
    gpu = runner.device.type == "cuda"
    res.checks = [
        at_most("adapt_over_plain_frame", adapt, ADAPT_TARGET, not cfg.quick),
        at_least(f"sequential_over_batched_tta_{n}", batch, BATCH_TARGET_CPU, not cfg.quick and not gpu),
        at_least(f"sequential_over_batched_tta_{n} (GPU)", batch, BATCH_TARGET_GPU, not cfg.quick and gpu),
    ]
    return res
