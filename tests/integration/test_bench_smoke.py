"""`mcga bench --quick`: the whole suite at tiny sizes, end to end (real `mcga serve` processes and
probe children). Checks the interface other tools read, never a timing."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from model.cli import _bench_model, _bench_suite, build_parser

ROOT = Path(__file__).resolve().parents[2]
RATIOS = (
    "mstpp_over_ganet_s2_512",
    "service_over_model_512",
    "adapt_over_plain_frame",
    "sequential_over_batched_tta_8",
    "metrics_on_over_off_throughput",
)


def test_bench_parser_keeps_the_model_command() -> None:
    parser = build_parser()
    assert parser.parse_args(["bench", "model", "--json", "-"]).func is _bench_model
    suite = parser.parse_args(["bench", "--quick", "--sections", "tta,memory"])
    assert suite.func is _bench_suite
    assert (suite.quick, suite.sections) == (True, "tta,memory")


def test_quick_suite_writes_the_json_interface(tiny_weights: Path, tmp_path: Path) -> None:
    out, md = tmp_path / "bench.json", tmp_path / "BENCHMARKS.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCGA_")} | {"OMP_NUM_THREADS": "1"}
    args = ["--quick", "--threads", "1", "--device", "cpu", "--weights", str(tiny_weights)]
    done = subprocess.run(
        [sys.executable, "-m", "model.cli", "bench", *args, "--json", str(out), "--markdown", str(md)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(out.read_text())
    assert report["schema"] == "mcga-bench/1"
    assert report["ok"] is True
    assert report["quick"] is True
    for name in RATIOS:
        value = report["ratios"][name]
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (name, value)
    for frame in ("512", "1024", "4k_tiled"):
        assert math.isfinite(report["peak_rss_mb"][frame]) and report["peak_rss_mb"][frame] > 0
    assert set(report["sections"]) == {"model", "serving", "batching", "tta", "memory", "metrics"}
    assert all(check["passed"] is None for check in report["checks"])  # quick: targets do not apply
    for key in ("params", "gmac_256", "ms_256", "ms_512"):
        assert key in report["sections"]["model"]["ganet_s2"]
        assert key in report["sections"]["model"]["mstpp"]
    metrics = report["sections"]["metrics"]
    assert metrics["rounds"] == 2 and metrics["round_ratio_low"] <= metrics["round_ratio_high"]
    assert (
        metrics["round_ratio_low"]
        <= report["ratios"]["metrics_on_over_off_throughput"]
        <= metrics["round_ratio_high"]
    )
    assert report["machine"]["torch_threads"] == 1
    text = md.read_text()
    assert text.startswith("# Benchmarks") and "mcga bench --quick" in text
    assert "Machine:" in text and "Date:" in text
