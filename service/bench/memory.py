"""Memory: peak resident memory of one frame through the service's runner, each in a fresh process.

Frames of 512^2, 1024^2 and 3840x2160; frames with a side above the tile size (512) run as
overlapping tiles, as the service runs them. The figure is the child's peak RSS (VmHWM, see
`common.peak_rss_mb`), which holds torch, the weights and the (H, W, 31) float32 cube (1 GB at 4K);
`rss_loaded_mb` is the same before the frame. Target: the 4K frame under 4 GB on CPU.
"""

from __future__ import annotations

from typing import Any

from service.bench.common import BenchWeights, SectionResult, at_most
from service.bench.config import BenchConfig
from service.bench.probe import run_probe

FOUR_K_TARGET_MB = 4096.0


def run_memory(cfg: BenchConfig, weights: BenchWeights) -> SectionResult:
    res = SectionResult("memory")
    frames: dict[str, Any] = {}
    for name, (height, width) in cfg.memory_frames.items():
        argv = ["frame", "--weights", str(weights.path), "--device", cfg.device]
        argv += ["--height", str(height), "--width", str(width)]
        argv += ["--tile-size", str(cfg.tile_size), "--tile-overlap", str(cfg.tile_overlap)]
        frames[name] = probe = run_probe(argv, cfg.threads)
        res.peak_rss_mb[name] = float(probe["peak_rss_mb"])
    res.data = {
        "frames": frames,
        "tile_size": cfg.tile_size,
        "tile_overlap": cfg.tile_overlap,
        "torch_threads": cfg.threads,
    }
    gpu = cfg.device.startswith("cuda")
    res.checks.append(
        at_most(
            "peak_rss_mb 4k_tiled", res.peak_rss_mb["4k_tiled"], FOUR_K_TARGET_MB, not cfg.quick and not gpu
        )
    )
    return res
