"""`mcga train all`: stage 1 -> pruned MoC -> stage 2, exported as one self-contained GANet checkpoint."""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.checkpoint import load_checkpoint, save_checkpoint
from model.config import GANetConfig, VQVAEConfig
from model.data import AugmentConfig, Cube, RGBHSIPatchDataset
from model.data.spectra import CameraResponse
from model.data.synthesis import render_rgb
from model.ganet import GANet
from model.losses import DEFAULT_LOSS
from model.prune import prune_moc, search_usage
from model.train.loop import Dist, LoopConfig, setup_distributed
from model.train.sources import CAVE_VAL_SCENES, cameras, cave_split, stage1_sources
from model.train.stage1 import assemble_moc, code_usage, train_stage1
from model.train.stage2 import build_ganet, predict_ganet, train_rgb2hsi
from model.vqvae import VQVAE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    """The bundled-weights recipe; `make weights` runs it at these defaults."""

    stage1_steps: int = 2500
    stage2_steps: int = 1500
    batch: int = 8
    patch: int = 64
    stage1_lr: float = 2e-4  # measured on CAVE: 1e-3 gave worse reconstruction and codebook usage
    stage2_lr: float = 1e-3
    stage2_loss: str = DEFAULT_LOSS  # a key of model/losses.py LOSSES
    stage1_loss: str = "charbonnier"  # "relative" as in stage 2: measured in README, "The model"
    latent_dim: int = 32  # d: MODEL.md's MCGA-S2 width; cost falls ~d^2 in the blocks, ~d in the searches
    tta_tau: float = GANetConfig.tta_tau  # stored in the checkpoint; chosen per model on training scenes
    synthetic_cubes: int = 16
    prune_cameras: int = 3  # the default camera and 2 others (model/prune.py); 0 keeps the whole MoC
    seed: int = 0


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def stage2_data(data_root: Path, patch: int, seed: int, with_response: bool = False) -> RGBHSIPatchDataset:
    """CAVE training patches through the camera set; `with_response` adds each patch's camera."""
    train, _ = cave_split(data_root / "cave")
    return cave_patches(train, cameras(data_root / "cameras")[1], patch, seed, with_response)


def cave_patches(
    train: Sequence[Cube], cams: list[CameraResponse], patch: int, seed: int, with_response: bool
) -> RGBHSIPatchDataset:
    return RGBHSIPatchDataset(
        train,
        patch,
        cams,
        length=1 << 30,
        seed=seed,
        augment=AugmentConfig(noise=True),
        with_response=with_response,
    )


def prune_for_cave(
    net: GANet, train: Sequence[Cube], cams: list[CameraResponse], n_cameras: int, seed: int
) -> tuple[GANet, dict[str, Any]]:
    """Drop the MoC codes no search picks on CAVE's training scenes, rendered through the default
    camera (`cams[0]`) and `n_cameras - 1` others of the set (model/prune.py); returns the pruned
    net and a report."""
    rng = np.random.default_rng(seed)
    others = rng.choice(np.arange(1, len(cams)), min(n_cameras, len(cams)) - 1, replace=False)
    picks = [cams[0], *(cams[int(i)] for i in others)]
    images = (
        torch.from_numpy(np.clip(render_rgb(c.data, cam), 0.0, 1.0)).unsqueeze(0)
        for c in train
        for cam in picks
    )
    before = list(net.cfg.moc_sizes)
    pruned = prune_moc(net.eval(), search_usage(net.eval(), images))
    report = {"before": before, "after": list(pruned.cfg.moc_sizes), "cameras": [c.name for c in picks]}
    log.info("MoC pruned after stage 2: %s", report)
    return pruned, report


class RecipeMismatchError(ValueError):
    """`out` holds a run of another recipe: resuming it would mix the two."""


def claim_run_folder(out: Path, recipe: Recipe, main: bool) -> None:
    """Record the recipe in `out/recipe.json`, or check that a run already there used the same one:
    stage checkpoints found in `out` are resumed, so a different recipe would silently reuse them."""
    path = out / "recipe.json"
    wanted = json.loads(json.dumps(recipe.__dict__))
    if path.exists():
        found = json.loads(path.read_text())
        changed = {k: (found.get(k), v) for k, v in wanted.items() if found.get(k) != v}
        if changed:
            said = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in sorted(changed.items()))
            raise RecipeMismatchError(
                f"{out} holds a run of another recipe ({said}); use a new --out, or remove {out}"
            )
    elif main:
        out.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")  # atomic: other ranks may read it at once
        tmp.write_text(json.dumps(wanted, indent=2) + "\n")
        tmp.replace(path)


def train_all(data_root: Path, out: Path, export: Path | None, recipe: Recipe, d: Dist | None = None) -> Path:
    d = d or setup_distributed()
    claim_run_folder(out, recipe, d.main)
    t0 = time.time()
    sources = stage1_sources(data_root, synthetic=recipe.synthetic_cubes, seed=recipe.seed)
    vq_cfg = VQVAEConfig(
        datasets=tuple(s.spec for s in sources), latent_dim=recipe.latent_dim, recon_loss=recipe.stage1_loss
    )
    vq_path = out / "stage1_vqvae.pt"
    # torch's random state as stage 1 left it: GANet's initial weights draw from it, so a run that
    # loads stage 1 from disk restores it and builds the same network as an uninterrupted run.
    rng_path = out / "stage1_rng.pt"
    if vq_path.exists():
        vq = load_checkpoint(vq_path).model
        assert isinstance(vq, VQVAE)
        if rng_path.exists():
            torch.set_rng_state(torch.load(rng_path, weights_only=True))
        else:
            log.warning("%s has no stage-1 random state: stage 2 starts from other weights", out)
            torch.manual_seed(recipe.seed)
    else:
        loop1 = LoopConfig(
            recipe.stage1_steps, recipe.batch, recipe.patch, recipe.stage1_lr, seed=recipe.seed
        )
        vq = train_stage1(sources, vq_cfg, loop1, out, d)
        if d.main:
            torch.save(torch.get_rng_state(), rng_path)
            save_checkpoint(vq_path, vq, {"sources": [s.spec.name for s in sources]})
    t1 = time.time()
    moc, moc_report = assemble_moc(vq, code_usage(vq.eval(), sources))
    log.info("MoC: %s", json.dumps(moc_report))
    train = next(s for s in sources if s.spec.name == "cave").cubes  # already read for stage 1
    default_cam, cams = cameras(data_root / "cameras")  # the default camera first
    net = build_ganet(vq, moc, "cave", GANetConfig(camera_consistency=True, tta_tau=recipe.tta_tau))
    assert net.consistency is not None
    net.consistency.set_response(torch.from_numpy(default_cam.matrix))
    loop2 = LoopConfig(recipe.stage2_steps, recipe.batch, recipe.patch, recipe.stage2_lr, seed=recipe.seed)
    train_rgb2hsi(
        net,
        predict_ganet,
        cave_patches(train, cams, recipe.patch, recipe.seed, with_response=True),
        loop2,
        out,
        d,
        "stage2_ganet",
        recipe.stage2_loss,
    )
    prune_report: dict[str, Any] = {"skipped": True}
    if recipe.prune_cameras > 0 and d.main:
        net, prune_report = prune_for_cave(net, train, cams, recipe.prune_cameras, recipe.seed)
    t2 = time.time()
    metadata: dict[str, Any] = {
        "name": "mcga-s2",
        "wavelengths_nm": list(vq.cfg.datasets[0].wavelengths_nm),
        "camera": {"name": default_cam.name, "response": default_cam.matrix.tolist()},
        "input": "linear camera RGB in [0, 1] (the camera response above, white reflector -> max channel 1)",
        "moc": moc_report,
        "moc_pruned_after_stage2": prune_report,
        "provenance": {
            "recipe": recipe.__dict__,
            "stage1_sources": {s.spec.name: [c.name for c in s.cubes] for s in sources},
            "stage2_train_scenes": [c.name for c in train],
            "validation_scenes": list(CAVE_VAL_SCENES),
            "git_commit": git_commit(),
            "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "minutes": {"stage1": round((t1 - t0) / 60, 1), "stage2": round((t2 - t1) / 60, 1)},
            "torch": str(torch.__version__),
            "world_size": d.world,
        },
    }
    final = out / "mcga_s2.pt"
    if d.main:
        save_checkpoint(final, net, metadata)
        if export is not None:
            save_checkpoint(export, net, metadata)
    return export or final
