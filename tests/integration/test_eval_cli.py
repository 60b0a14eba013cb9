"""`mcga eval --json` as other tools call it: CAVE-layout scenes, a camera file, one JSON object."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from model.checkpoint import BUNDLED_WEIGHTS, load_checkpoint
from model.ganet import GANet

KEYS = {"mrae", "mrae_001", "rmse", "psnr"}


def _write_scenes(root: Path, names: list[str], size: int = 32) -> Path:
    """Flat CAVE layout: `<scene>_ms/<scene>_ms_NN.png`, 16-bit bands of smooth random spectra."""
    rng = np.random.default_rng(0)
    for name in names:
        scene = root / f"{name}_ms"
        scene.mkdir(parents=True)
        spectra = np.cumsum(rng.uniform(-1, 1, size=(31, size, size)), axis=0)
        cube = (spectra - spectra.min()) / (spectra.max() - spectra.min())
        for n, band in enumerate(cube, start=1):
            Image.fromarray((band * 65535).astype(np.uint16)).save(scene / f"{name}_ms_{n:02d}.png")
    return root


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "model.cli", "eval", "--weights", str(BUNDLED_WEIGHTS), "--json", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def _eval(*args: str) -> dict[str, object]:
    done = _run(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, done.stdout[-2000:]  # one JSON object, nothing else on stdout
    result: dict[str, object] = json.loads(lines[0])
    return result


def test_eval_folder_and_filters_camera(tmp_path: Path) -> None:
    data = _write_scenes(tmp_path / "scenes", ["alpha", "beta"])
    filters = np.random.default_rng(1).uniform(0.0, 0.1, size=(31, 3))
    np.savez(tmp_path / "cam.npz", filters=filters)
    out = _eval(
        "--data", str(data), "--camera", str(tmp_path / "cam.npz"),
        "--protocols", "plain,bright-10+tta", "--tta-steps", "1", "--tta-lr", "1e-4", "--tta-tau", "0.5",
    )  # fmt: skip
    mean, images, protocols = out["mean"], out["images"], out["protocols"]
    assert isinstance(mean, dict) and set(mean) == KEYS
    assert all(np.isfinite(v) for v in mean.values())
    assert isinstance(images, list) and [im["name"] for im in images] == ["alpha", "beta"]
    assert all(set(im) >= KEYS for im in images)
    assert isinstance(protocols, dict) and set(protocols) == {"plain", "bright-10+tta"}
    assert out["tta_steps"] == 1 and out["tta_lr"] == 1e-4 and out["scenes"] == ["alpha", "beta"]
    assert out["tta_tau"] == 0.5


def test_eval_ssf_camera_by_index(tmp_path: Path, shared_data: Path) -> None:
    data = _write_scenes(tmp_path / "scenes", ["gamma"])
    jiang = shared_data / "cameras" / "jiang2013_cameras.npz"
    first, other = (
        _eval("--data", str(data), "--camera", str(jiang), "--camera-index", str(i)) for i in (0, 5)
    )
    bundled = load_checkpoint(BUNDLED_WEIGHTS).model
    assert isinstance(bundled, GANet)
    assert first["tta_tau"] == bundled.cfg.tta_tau  # no override: the file's
    assert first["camera"] != other["camera"]
    assert first["mean"] != other["mean"]  # a different camera renders different RGB


def test_eval_bad_camera_file_is_a_clear_error(tmp_path: Path) -> None:
    data = _write_scenes(tmp_path / "scenes", ["delta"])
    np.savez(tmp_path / "cam.npz", response=np.ones((31, 3)))
    done = _run("--data", str(data), "--camera", str(tmp_path / "cam.npz"))
    assert done.returncode == 2 and done.stdout == ""
    assert "bad --camera" in done.stderr and "no `filters`" in done.stderr and "Traceback" not in done.stderr


def test_command_lines_that_cannot_run_get_one_line_and_exit_2(tmp_path: Path) -> None:
    """Every refusal before the first scene is rendered: a message naming the option, no traceback."""
    data = _write_scenes(tmp_path / "scenes", ["eps"], size=16)
    (tmp_path / "empty").mkdir()
    np.save(tmp_path / "cam.npy", np.ones((31, 3)))
    cases = [
        (["--data", str(tmp_path / "missing")], "no such folder"),
        (["--data", str(tmp_path / "empty")], "no CAVE-layout scene"),
        (["--data", str(data), "--protocols", ""], "choose from"),
        (["--data", str(data), "--protocols", "plain,bogus"], "choose from"),
        (["--data", str(data), "--camera-index", "3"], "give --camera too"),
        (["--data", str(data), "--camera", str(tmp_path / "cam.npy")], "bad --camera"),
    ]
    for args, message in cases:
        done = _run(*args)
        assert done.returncode == 2 and done.stdout == "", (args, done.stderr[-500:])
        assert message in done.stderr and "Traceback" not in done.stderr, (args, done.stderr[-500:])
    missing = [
        sys.executable,
        "-m",
        "model.cli",
        "eval",
        "--data",
        str(data),
        "--weights",
        str(tmp_path / "no.pt"),
    ]
    done = subprocess.run(missing, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2 and "--weights" in done.stderr and "Traceback" not in done.stderr


def test_top_level_figures_are_the_plain_protocols_whatever_the_order(tmp_path: Path) -> None:
    data = _write_scenes(tmp_path / "scenes", ["zeta"], size=16)
    out = _eval("--data", str(data), "--protocols", "bright+10,plain")
    assert out["protocol"] == "plain"
    protocols = out["protocols"]
    assert isinstance(protocols, dict) and out["mean"] == protocols["plain"] != protocols["bright+10"]
