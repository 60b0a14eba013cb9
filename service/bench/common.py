"""What every section shares: timing, inputs, the weights measured, the machine, results and checks."""

from __future__ import annotations

import math
import os
import platform
import resource
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.checkpoint import BUNDLED_WEIGHTS, save_checkpoint
from model.config import GANetConfig
from model.ganet import GANet

ROOT = Path(__file__).resolve().parents[2]
WAVELENGTHS_NM = [400.0 + 10 * i for i in range(31)]


def rgb_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A linear-RGB (H, W, 3) float32 frame in [0, 1]."""
    return np.random.default_rng(seed).random((height, width, 3), dtype=np.float32)


def pick_device(preference: str) -> str:
    if preference == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return preference


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# ---- timing --------------------------------------------------------------------------------------


def median_ms(seconds: list[float]) -> float:
    return round(1000 * statistics.median(seconds), 2)


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3) if denominator > 0 else math.nan


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB.

    Linux: `VmHWM` of /proc/self/status, the high-water mark of this process's own memory map. Not
    `ru_maxrss`: across fork and exec it keeps the parent's high-water mark (measured: a child of a
    400 MB parent reports 411 MB from ru_maxrss, 11 MB from VmHWM). Elsewhere ru_maxrss it is.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)


# ---- weights -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchWeights:
    path: Path
    source: str  # "bundled", "given" or "random"
    note: str


def camera_response(seed: int = 0) -> list[list[float]]:
    """A (31, 3) response whose rendering of a [0, 1] cube stays in [0, 1]."""
    r = np.random.default_rng(seed).random((31, 3))
    return (r / r.sum(axis=0, keepdims=True)).tolist()


def resolve_weights(given: Path | None, scratch: Path) -> BenchWeights:
    """`given`, else the bundled weights, else a random default-config GANet saved under `scratch`
    (same architecture and cost as the bundled one, so timings hold; the cubes are meaningless)."""
    if given is not None:
        return BenchWeights(given, "given", str(given))
    if BUNDLED_WEIGHTS.exists():
        return BenchWeights(BUNDLED_WEIGHTS, "bundled", str(BUNDLED_WEIGHTS))
    torch.manual_seed(0)
    meta = {
        "wavelengths_nm": WAVELENGTHS_NM,
        "camera": {"name": "bench-random", "response": camera_response()},
    }
    path = save_checkpoint(scratch / "random_ganet_s2.pt", GANet(GANetConfig()).eval(), meta)
    note = f"random GANet (default config): {BUNDLED_WEIGHTS} is missing"
    return BenchWeights(path, "random", note)


# ---- the machine ---------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int, device: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch": str(torch.__version__),
        "torch_threads": threads,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


# ---- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One figure against its target; `passed` is None where the target does not apply here."""

    name: str
    value: float
    target: str
    passed: bool | None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "target": self.target, "passed": self.passed}


def at_least(name: str, value: float, bound: float, applies: bool = True) -> Check:
    return Check(name, value, f">= {bound:g}", (value >= bound) if applies else None)


def at_most(name: str, value: float, bound: float, applies: bool = True) -> Check:
    return Check(name, value, f"<= {bound:g}", (value <= bound) if applies else None)


@dataclass
class SectionResult:
    name: str
    data: dict[str, Any] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
