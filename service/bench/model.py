"""Model: GANet-S2 against MST++ at each size: parameters, GMACs, latency and peak memory.

Latency: eager PyTorch under `inference_mode`, batch 1, float32, the two models taking turns at each
size (median of `repeats` after `warmup`). Peak memory: one fresh child per model running the sizes
in ascending order (peak RSS on CPU; `max_memory_allocated` on CUDA). Target: MST++ at least 4x
slower than GANet-S2 at every size.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from model.bench import gmacs, interleaved
from model.checkpoint import load_checkpoint
from model.mstpp import MSTPlusPlus
from service.bench.common import (
    BenchWeights,
    SectionResult,
    at_least,
    median_ms,
    ratio,
    synchronize,
)
from service.bench.config import BenchConfig
from service.bench.probe import run_probe

SPEEDUP_TARGET = 4.0


def _forward(net: nn.Module, x: torch.Tensor, device: str) -> Callable[[], None]:
    def call() -> None:
        with torch.inference_mode():
            net(x)
        synchronize(device)

    return call


def _peak_memory(name: str, weights: BenchWeights, cfg: BenchConfig) -> dict[str, float | None]:
    """Nominal size -> peak memory (MB) of one forward at that size, from a fresh child."""
    sizes = cfg.model_sizes
    argv = ["model", "--name", name, "--sizes", ",".join(str(s) for s in sizes.values())]
    argv += ["--device", cfg.device, "--weights", str(weights.path)]
    probe = run_probe(argv, cfg.threads)
    key = "cuda_peak_mb" if cfg.device.startswith("cuda") else "peak_rss_mb"
    return {nominal: probe[key][str(actual)] for nominal, actual in sizes.items()}


def run_model(cfg: BenchConfig, weights: BenchWeights) -> SectionResult:
    res = SectionResult("model")
    nets: dict[str, nn.Module] = {
        "ganet_s2": load_checkpoint(weights.path).model.eval(),
        "mstpp": MSTPlusPlus().eval(),
    }
    gmac_size = cfg.model_sizes["256"]
    entries = {
        name: {
            "params": sum(p.numel() for p in net.parameters()),
            "gmac_256": round(gmacs(net, gmac_size), 3),
        }
        for name, net in nets.items()
    }
    nets = {name: net.to(cfg.device) for name, net in nets.items()}
    for nominal, side in cfg.model_sizes.items():
        x = torch.rand(1, 3, side, side, device=cfg.device)
        times = interleaved(
            {name: _forward(net, x, cfg.device) for name, net in nets.items()}, cfg.warmup, cfg.repeats
        )
        for name in nets:
            entries[name][f"ms_{nominal}"] = median_ms(times[name])
        r = ratio(entries["mstpp"][f"ms_{nominal}"], entries["ganet_s2"][f"ms_{nominal}"])
        res.ratios[f"mstpp_over_ganet_s2_{nominal}"] = r
        res.checks.append(at_least(f"mstpp_over_ganet_s2_{nominal}", r, SPEEDUP_TARGET, not cfg.quick))
    memory_kind = "cuda_peak_mb" if cfg.device.startswith("cuda") else "peak_rss_mb"
    for name in nets:
        for nominal, mb in _peak_memory(name, weights, cfg).items():
            entries[name][f"{memory_kind}_{nominal}"] = mb if mb is not None else float("nan")
    res.data = {
        "sizes": dict(cfg.model_sizes),
        "gmac_size": gmac_size,
        "mode": "eager, inference_mode, batch 1, float32",
        "memory_key": memory_kind,
        "memory": "a fresh process per model, sizes ascending (includes torch and the weights)",
        **entries,
    }
    return res
