"""The checkpoints shipped in model/weights: each loads, is trained, and the fast one is cheaper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from model.bench import gmacs
from model.checkpoint import BUNDLED_WEIGHTS, load_checkpoint
from model.config import CAVE_WAVELENGTHS
from model.data import read_cave
from model.evaluate import camera_from_metadata, render_pairs
from model.evaluate_cli import scene_dirs
from model.ganet import GANet
from model.metrics import image_metrics

FAST_WEIGHTS = BUNDLED_WEIGHTS.with_name("mcga_s2_d16.pt")
SHIPPED = {BUNDLED_WEIGHTS: 32, FAST_WEIGHTS: 16}  # file -> latent width d
Crop = tuple[torch.Tensor, torch.Tensor]  # (RGB (3, s, s), HSI (31, s, s))


def _val_crops(data: Path, meta: dict[str, Any], size: int = 128) -> list[Crop]:
    """Centre crops of two validation scenes, rendered through the checkpoint's own camera."""
    scenes = scene_dirs(data / "cave", "val")
    camera = camera_from_metadata({"wavelengths_nm": list(CAVE_WAVELENGTHS), **meta})
    crops = []
    for pair in render_pairs([read_cave(p) for p in scenes[:2]], camera):
        top, left = ((n - size) // 2 for n in pair.rgb.shape[1:])
        window = (slice(None), slice(top, top + size), slice(left, left + size))
        crops.append((pair.rgb[window], pair.hsi[window]))
    return crops


def _mean_metrics(net: GANet, crops: list[Crop]) -> dict[str, float]:
    with torch.inference_mode():
        per_image = [image_metrics(net(rgb.unsqueeze(0)).hsi[0], hsi) for rgb, hsi in crops]
    return {k: float(np.mean([m[k] for m in per_image])) for k in per_image[0]}


@pytest.mark.parametrize("path", list(SHIPPED), ids=lambda p: p.name)
def test_shipped_weights_are_trained_ganets(path: Path, shared_data: Path) -> None:
    ck = load_checkpoint(path)
    assert isinstance(ck.model, GANet)
    assert ck.model.cfg.latent_dim == SHIPPED[path]
    assert ck.model.consistency is not None and ck.metadata["camera"]["name"]
    crops = _val_crops(shared_data, ck.metadata)
    trained = _mean_metrics(ck.model, crops)
    # The same network with freshly initialised trainable parts (frozen stage 1 and camera kept).
    torch.manual_seed(0)
    fresh = GANet(ck.model.cfg).eval()
    frozen = {
        k: v
        for k, v in ck.model.state_dict().items()
        if not k.startswith(("stem", "down", "up", "to_code", "enc", "fuse", "dec."))
    }
    fresh.load_state_dict(frozen, strict=False)
    untrained = _mean_metrics(fresh, crops)
    # Measured on these crops: 0.40 / 0.042 (d = 32), 0.47 / 0.048 (d = 16); fresh ~1.0 / 0.09-0.10.
    assert trained["mrae_001"] < 0.6 and trained["rmse"] < 0.07, trained
    assert trained["rmse"] * 2 < untrained["rmse"], (trained, untrained)


def test_fast_variant_costs_under_half_the_default() -> None:
    default, fast = (load_checkpoint(p).model for p in SHIPPED)
    assert gmacs(fast, 256) * 2 < gmacs(default, 256)
