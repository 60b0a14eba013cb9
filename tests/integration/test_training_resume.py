"""`mcga train all` resumed is `mcga train all` uninterrupted: stage 2 built after stage 1 was loaded
from disk, stage 1 resumed across a dead-code restart; a run folder of another recipe is refused;
arguments it cannot run with get one line and exit 2. Tiny recipes on the real shared data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from model.config import VQVAEConfig
from model.train import stage1
from model.train.loop import Dist, LoopConfig, parameter_checksum
from model.train.sources import stage1_sources

TINY = ["--stage1-steps", "3", "--stage2-steps", "3", "--batch", "2", "--patch", "32"]
TINY += ["--synthetic", "0", "--prune-cameras", "0", "--latent-dim", "8"]


def train(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "model.cli", "train", "all", "--data", str(data), "--out", str(out), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)


def final_checksum(out: Path, name: str) -> str:
    end = json.loads((out / f"{name}.jsonl").read_text().splitlines()[-1])
    assert end["event"] == "end"
    return str(end["rank_checksums"][0])


def test_stage2_after_a_restart_is_the_uninterrupted_run(shared_data: Path, tmp_path: Path) -> None:
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert train(shared_data, whole, *TINY).returncode == 0
    # Interrupted once stage 1 was written: stage 2 starts in a new process, stage 1 from disk.
    shutil.copytree(whole, resumed)
    for name in ("stage2_ganet.state.pt", "stage2_ganet.jsonl", "mcga_s2.pt"):
        (resumed / name).unlink()
    done = train(shared_data, resumed, *TINY)
    assert done.returncode == 0, done.stderr[-2000:]
    assert final_checksum(resumed, "stage2_ganet") == final_checksum(whole, "stage2_ganet")
    # The same folder with another recipe: refused, nothing reused.
    other = train(shared_data, resumed, *TINY[:-2], "--latent-dim", "16")
    assert other.returncode == 2 and "another recipe" in other.stderr and "latent_dim 8 -> 16" in other.stderr
    assert "Traceback" not in other.stderr


def test_stage1_resumed_across_a_dead_code_restart_is_the_uninterrupted_run(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = stage1_sources(shared_data, synthetic=0, seed=1)
    cfg = VQVAEConfig(datasets=tuple(s.spec for s in sources), latent_dim=8)
    # Restarts after steps 3 and 6 (none in the last quarter), the checkpoint after step 5: the
    # resumed run's restart at 6 must see the counts of steps 4-6 and the generator as drawn at 3.
    loop = LoopConfig(steps=12, batch=2, patch=32, lr=2e-4, seed=1, ckpt_every=5, warmup=2)
    d = Dist(0, 1, torch.device("cpu"))
    whole = parameter_checksum(
        stage1.train_stage1(sources, cfg, loop, tmp_path / "whole", d, restart_every=3)
    )

    save = stage1.save_state

    def killed_after_the_first_checkpoint(*args: object, **kwargs: object) -> None:
        save(*args, **kwargs)  # type: ignore[arg-type]
        raise KeyboardInterrupt

    monkeypatch.setattr(stage1, "save_state", killed_after_the_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):  # killed once the step-5 checkpoint is written
        stage1.train_stage1(sources, cfg, loop, tmp_path / "resumed", d, restart_every=3)
    monkeypatch.setattr(stage1, "save_state", save)
    resumed = stage1.train_stage1(sources, cfg, loop, tmp_path / "resumed", d, restart_every=3)
    assert parameter_checksum(resumed) == whole


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch", "0"], "--batch"),
        (["--stage1-steps", "0"], "--stage1-steps"),
        (["--tta-tau", "-1"], "--tta-tau"),
        (["--synthetic", "-1"], "--synthetic"),
    ],
)
def test_arguments_it_cannot_run_with_get_one_line(
    shared_data: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    done = train(shared_data, tmp_path / "run", *args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_missing_data_and_an_out_that_is_a_file_are_refused(shared_data: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    done = train(tmp_path / "nowhere", tmp_path / "run")
    assert done.returncode == 2 and "no cave/ folder" in done.stderr
    done = train(shared_data, tmp_path / "file")
    assert done.returncode == 2 and "is a file" in done.stderr
