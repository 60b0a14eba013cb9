"""What every training run shares: distributed set-up, deterministic batches, schedule, log, resume.

Batches are a pure function of (seed, step, rank): a resumed run sees exactly the batches it would
have seen, and ranks of a `torchrun` job see disjoint samples. Distributed runs use PyTorch's
DistributedDataParallel (gloo on CPU, NCCL on CUDA) when `WORLD_SIZE` > 1.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset, default_collate
from tqdm import tqdm

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopConfig:
    steps: int
    batch: int
    patch: int
    lr: float
    weight_decay: float = 1e-4
    warmup: int = 100
    seed: int = 0
    log_every: int = 50
    ckpt_every: int = 500


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str | None = None) -> Dist:
    """Join the `torchrun` process group when launched by it; otherwise a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    return Dist(rank, world, dev)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cosine_lr(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def batch_at(dataset: Dataset[Any], batch: int, step: int, d: Dist) -> Any:
    """The batch rank `d.rank` trains on at `step` (datasets index their own randomness)."""
    n = len(dataset)  # type: ignore[arg-type]
    start = (step * d.world + d.rank) * batch
    return default_collate([dataset[(start + i) % n] for i in range(batch)])


class RunLog:
    """Append-only JSON-lines log of a run, plus a tqdm progress bar on the main rank."""

    def __init__(self, out: Path, name: str, total: int, start: int, d: Dist, config: dict[str, Any]) -> None:
        self.d = d
        self.path = out / f"{name}.jsonl"
        self.t0 = time.time()
        self.bar = tqdm(total=total, initial=start, desc=name, disable=not d.main, dynamic_ncols=True)
        if d.main:
            out.mkdir(parents=True, exist_ok=True)
            self.write({"event": "start", "step": start, "world": d.world, "config": config})

    def write(self, record: dict[str, Any]) -> None:
        if self.d.main:
            record = {"time": round(time.time() - self.t0, 2), **record}
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")

    def step(self, step: int, metrics: dict[str, float], every: int) -> None:
        self.bar.update(1)
        if self.d.main and (step % every == 0):
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()})
            self.write({"event": "step", "step": step, **metrics})

    def close(self, summary: dict[str, Any], model: torch.nn.Module | None = None) -> None:
        """End the run; with a model, record every rank's parameter checksum (DDP ranks must agree)."""
        self.bar.close()
        if model is not None:
            summary = {**summary, "rank_checksums": rank_checksums(model)}
        self.write({"event": "end", **summary})


def parameter_checksum(model: torch.nn.Module) -> str:
    """SHA-256 over every parameter's bytes, in name order."""
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def rank_checksums(model: torch.nn.Module) -> list[str]:
    mine = parameter_checksum(model)
    if not dist.is_initialized():
        return [mine]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, mine)
    return [str(g) for g in gathered]


def save_state(
    path: Path,
    step: int,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    extra: dict[str, Any] | None = None,
) -> None:
    """Resumable training state (model, optimizer, step); written atomically."""
    tmp = path.with_suffix(".tmp")
    torch.save(
        {"step": step, "model": model.state_dict(), "opt": opt.state_dict(), "extra": extra or {}}, tmp
    )
    tmp.replace(path)


def load_state(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> tuple[int, dict[str, Any]]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    log.info("resumed %s at step %d", path, state["step"])
    return int(state["step"]), dict(state.get("extra", {}))


def loop_config_dict(cfg: LoopConfig) -> dict[str, Any]:
    return asdict(cfg)
