"""Child processes measuring peak memory: nothing else ever ran in them, so their peak RSS is the cost.

    python -m service.bench.probe frame --weights W --height H --width W ...   one frame via the runner
    python -m service.bench.probe model --name mstpp --sizes 256,512 ...       bare forwards, ascending

Each prints one JSON line. `frame` goes through the service's runner (tiling above --tile-size),
`model` through the bare network; sizes run in ascending order, so the peak after each size is that
size's peak (glibc keeps the freed heap: `keep_freed_memory`, as in serving).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from model.checkpoint import load_checkpoint
from model.mstpp import MSTPlusPlus
from model.runtime import keep_freed_memory
from service.bench.common import ROOT, peak_rss_mb, pick_device, rgb_frame, synchronize


def _cuda_peak_mb(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    return round(torch.cuda.max_memory_allocated() / (1 << 20), 1)


def _frame(args: argparse.Namespace) -> dict[str, Any]:
    from service.engine.runner import Runner
    from service.engine.work import WorkItem
    from service.errors import ServiceError
    from service.metrics import Metrics
    from service.settings import Settings

    settings = Settings(
        weights=args.weights,
        device=args.device,
        torch_threads=args.threads,
        warmup_size=0,
        tile_size=args.tile_size,
        tile_overlap=args.tile_overlap,
        max_image_pixels=max(args.height * args.width, 1),
        redis_url=None,
    )
    runner = Runner(settings, Metrics(enabled=False))
    rgb = rgb_frame(args.height, args.width)
    loaded = peak_rss_mb()
    start = time.perf_counter()
    (out,) = runner.run([WorkItem(rgb)])
    synchronize(str(runner.device))
    if isinstance(out, ServiceError):
        raise RuntimeError(out.message)
    return {
        "height": args.height,
        "width": args.width,
        "tiled": out.tiled,
        "seconds": round(time.perf_counter() - start, 3),
        "rss_loaded_mb": loaded,
        "peak_rss_mb": peak_rss_mb(),
        "cuda_peak_mb": _cuda_peak_mb(str(runner.device)),
    }


def _model(args: argparse.Namespace) -> dict[str, Any]:
    device = pick_device(args.device)
    if args.name == "mstpp":
        net: torch.nn.Module = MSTPlusPlus()
    else:
        net = load_checkpoint(args.weights).model
    net = net.eval().to(device)
    result: dict[str, Any] = {"rss_loaded_mb": peak_rss_mb(), "peak_rss_mb": {}, "cuda_peak_mb": {}}
    for size in sorted(int(s) for s in args.sizes.split(",")):
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        with torch.inference_mode():
            net(torch.rand(1, 3, size, size, device=device))
        synchronize(device)
        result["peak_rss_mb"][str(size)] = peak_rss_mb()
        result["cuda_peak_mb"][str(size)] = _cuda_peak_mb(device)
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service.bench.probe", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("frame", "model"):
        p = sub.add_parser(name)
        p.add_argument("--weights", type=Path, default=None)
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--device", default="cpu")
    frame = sub.choices["frame"]
    frame.add_argument("--height", type=int, required=True)
    frame.add_argument("--width", type=int, required=True)
    frame.add_argument("--tile-size", type=int, default=512)
    frame.add_argument("--tile-overlap", type=int, default=32)
    frame.set_defaults(func=_frame)
    model = sub.choices["model"]
    model.add_argument("--name", choices=("ganet_s2", "mstpp"), required=True)
    model.add_argument("--sizes", required=True, help="comma-separated sides")
    model.set_defaults(func=_model)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    torch.set_num_threads(args.threads)
    sys.stdout.write(json.dumps(args.func(args)) + "\n")
    return 0


def run_probe(argv: list[str], threads: int, timeout_s: float = 1800.0) -> dict[str, Any]:
    """Run one probe in a fresh interpreter and return its JSON (raises with its stderr on failure)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCGA_")} | {
        "OMP_NUM_THREADS": str(threads)
    }
    done = subprocess.run(
        [sys.executable, "-m", "service.bench.probe", *argv, "--threads", str(threads)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"probe {argv[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    sys.exit(main())
