"""`mcga train compare`: GANet-S2, MST++ and root-polynomial regression on the same data and budget.

Same CAVE training scenes, same rendering and augmentation, same loss (the recipe's), same number of
steps, batch and patch size for the two networks; GANet-S2 reuses a trained stage 1. The root-
polynomial regression (the classical floor) is fitted in closed form on every training pixel
rendered through each camera of the set.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.baselines import RootPolyRegression
from model.checkpoint import load_checkpoint, save_checkpoint
from model.config import GANetConfig, MSTPPConfig
from model.data import render_rgb
from model.ganet import GANet
from model.losses import DEFAULT_LOSS
from model.mstpp import MSTPlusPlus
from model.train.loop import LoopConfig, setup_distributed
from model.train.pipeline import stage2_data
from model.train.sources import cameras, cave_split, stage1_sources
from model.train.stage1 import assemble_moc, code_usage
from model.train.stage2 import build_ganet, predict_ganet, predict_tensor, train_rgb2hsi
from model.vqvae import VQVAE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompareBudget:
    """Defaults equal the bundled recipe's stage 2, so the bundled GANet-S2 is itself the comparison model."""

    steps: int = 1500
    batch: int = 8
    patch: int = 64
    ganet_lr: float = 1e-3
    mstpp_lr: float = 4e-4  # MST++'s published learning rate
    loss: str = DEFAULT_LOSS  # both networks, as the recipe's stage 2, to compare like for like
    rootpoly_degree: int = 3
    synthetic_cubes: int = 16  # must match the stage 1 being reused
    seed: int = 0


def fit_rootpoly(data_root: Path, degree: int) -> RootPolyRegression:
    train, _ = cave_split(data_root / "cave")
    _, cams = cameras(data_root / "cameras")
    rgbs, hsis = [], []
    for cam in cams:
        for cube in train[:: max(1, len(cams) // 4)] if cam is not cams[0] else train:
            rgbs.append(torch.from_numpy(np.clip(render_rgb(cube.data, cam), 0, 1)))
            hsis.append(torch.from_numpy(cube.data))
    return RootPolyRegression.fit(rgbs, hsis, degree=degree, ridge=1e-6)


MODELS = ("rootpoly", "mstpp", "ganet_s2")


def train_compare(
    data_root: Path, stage1: Path, out: Path, budget: CompareBudget, models: tuple[str, ...] = MODELS
) -> dict[str, Any]:
    d = setup_distributed()
    out.mkdir(parents=True, exist_ok=True)
    minutes: dict[str, float] = {}
    data = stage2_data(data_root, budget.patch, budget.seed)

    if "rootpoly" in models:
        t = time.time()
        reg = fit_rootpoly(data_root, budget.rootpoly_degree)
        state = reg.state_dict()
        np.savez(out / "rootpoly.npz", degree=state["degree"].numpy(), weight=state["weight"].numpy())
        minutes["rootpoly"] = round((time.time() - t) / 60, 2)
    for name in ("mstpp", "ganet_s2"):
        if name not in models:
            continue
        torch.manual_seed(budget.seed)
        model, predict, lr = (
            (MSTPlusPlus(MSTPPConfig()), predict_tensor, budget.mstpp_lr)
            if name == "mstpp"
            else (ganet_from_stage1(data_root, stage1, budget), predict_ganet, budget.ganet_lr)
        )
        t = time.time()
        loop = LoopConfig(budget.steps, budget.batch, budget.patch, lr, seed=budget.seed)
        trained = train_rgb2hsi(model, predict, data, loop, out, d, name, budget.loss)
        minutes[name] = round((time.time() - t) / 60, 2)
        if d.main:
            save_checkpoint(
                out / f"{name}.pt", trained, {"budget": budget.__dict__, "minutes": minutes[name]}
            )
    log.info("training minutes: %s", minutes)
    return minutes


def ganet_from_stage1(data_root: Path, stage1: Path, budget: CompareBudget) -> GANet:
    vq = load_checkpoint(stage1).model
    assert isinstance(vq, VQVAE)
    sources = stage1_sources(data_root, synthetic=budget.synthetic_cubes, seed=budget.seed)
    moc, _ = assemble_moc(vq, code_usage(vq.eval(), sources))
    return build_ganet(vq, moc, "cave", GANetConfig())
