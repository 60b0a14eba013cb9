"""`mcga bench model`: parameters, GMACs and CPU latency of GANet-S2 against MST++ in one run.

Both models run the same way: eager PyTorch under `torch.inference_mode`, batch 1, the current
thread settings; at each size the models take turns run by run (so a shared machine's drift hits
both alike), and each latency is the median of `repeats` runs after a warm-up run of each. GMACs come
from torch's FLOP counter plus, for GANet, the nearest-codeword searches (faiss runs them outside
torch, so they are counted analytically: pixels x codewords x d per search) and the in-place
`addmm_` accumulations of the split 1x1 convs, which torch's counter does not know.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from model.ganet import GANet


def search_macs(net: GANet, height: int, width: int) -> int:
    """MACs of GANet's three nearest-codeword searches per level at an H x W input."""
    m = net.cfg.multiple
    H, W = -(-height // m) * m, -(-width // m) * m
    return sum(
        3 * (H >> j) * (W >> j) * net.codebook(j).shape[0] * net.cfg.latent_dim for j in range(net.cfg.scales)
    )


def _addmm_inplace_flops(
    self_shape: torch.Size, a_shape: torch.Size, b_shape: torch.Size, *args: Any, **kwargs: Any
) -> int:
    """FLOPs of `out.addmm_(a, b)`: as `addmm` (torch's FLOP counter registers only the latter)."""
    (m, k), (_, n) = a_shape, b_shape
    return 2 * m * n * k


def gmacs(model: nn.Module, size: int) -> float:
    x = torch.rand(1, 3, size, size)
    counter = FlopCounterMode(display=False, custom_mapping={torch.ops.aten.addmm_: _addmm_inplace_flops})
    with torch.inference_mode(), counter:
        model(x)
    macs = counter.get_total_flops() / 2
    if isinstance(model, GANet):
        macs += search_macs(model, size, size)
    return macs / 1e9


def interleaved(fns: Mapping[str, Callable[[], object]], warmup: int, repeats: int) -> dict[str, list[float]]:
    """Seconds of each call, the calls taking turns (so drift on a shared machine hits all alike)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def latencies_ms(fns: Mapping[str, Callable[[], Any]], warmup: int = 1, repeats: int = 5) -> dict[str, float]:
    """Median milliseconds of each call under `inference_mode`, the calls taking turns run by run."""
    with torch.inference_mode():
        times = interleaved(fns, warmup, repeats)
    return {name: 1000 * statistics.median(ts) for name, ts in times.items()}


def bench_models(
    models: dict[str, nn.Module], sizes: tuple[int, ...] = (256, 512), repeats: int = 5
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "torch": str(torch.__version__),
        },
        "mode": "eager, inference_mode, batch 1, float32",
    }
    for name, model in models.items():
        model.eval()
        result[name] = {
            "params": sum(p.numel() for p in model.parameters()),
            "gmac_256": round(gmacs(model, 256), 2),
        }
    for s in sizes:
        x = torch.rand(1, 3, s, s)
        ms = latencies_ms({name: partial(model, x) for name, model in models.items()}, repeats=repeats)
        for name, value in ms.items():
            result[name][f"ms_{s}"] = round(value, 1)
    if "ganet_s2" in result and "mstpp" in result:
        result["ratios"] = {
            f"mstpp_over_ganet_s2_{s}": round(result["mstpp"][f"ms_{s}"] / result["ganet_s2"][f"ms_{s}"], 2)
            for s in sizes
        }
    return result
