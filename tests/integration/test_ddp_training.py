"""Two CPU processes under torchrun (gloo) train both stages for a few steps and stay in sync."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import free_port


def test_two_processes_stay_in_sync(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={free_port()}",
        "-m",
        "model.cli",
        "train",
        "all",
        "--data",
        str(shared_data),
        "--out",
        str(out),
        "--stage1-steps",
        "3",
        "--stage2-steps",
        "3",
        "--batch",
        "2",
        "--patch",
        "32",
        "--synthetic",
        "0",
        "--prune-cameras",
        "0",  # pruning is tested on its own (tests/unit/model/test_prune.py); here it would take minutes
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("stage1", "stage2_ganet"):
        events = [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]
        start, end = events[0], events[-1]
        assert start["world"] == 2
        sums = end["rank_checksums"]
        assert len(sums) == 2 and sums[0] == sums[1], f"{name}: ranks diverged {sums}"
    assert (out / "mcga_s2.pt").exists()
