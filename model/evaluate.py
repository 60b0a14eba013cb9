"""Evaluation on rendered CAVE-layout scenes: NTIRE metrics under the paper's protocols.

Protocols: `plain`; `mixed` (the same 16x16 patch permutation on RGB and HSI: tests reliance on
spatial context); `bright+10` / `bright-10` (RGB gamma-corrected to +-10% mean brightness, HSI
unchanged), each also with one-shot TTA (`+tta`) for GANet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from model.baselines import RootPolyRegression
from model.config import TTAConfig
from model.data import Cube, render_rgb
from model.data.spectra import CameraResponse, load_jiang2013_cameras, load_ntire_camera, make_camera
from model.ganet import GANet
from model.metrics import image_metrics, mean_metrics
from model.protocols import brightness_shift, mix_patches
from model.report import write_report
from model.tta import TTAAdapter

Predictor = Callable[[Tensor], Tensor]  # (1, 3, H, W) -> (1, C, H, W)
PROTOCOLS = ("plain", "mixed", "bright+10", "bright-10", "bright+10+tta", "bright-10+tta")


@dataclass(frozen=True)
class Pair:
    name: str
    rgb: Tensor  # (3, H, W) linear, [0, 1]
    hsi: Tensor  # (C, H, W)


def render_pairs(cubes: Sequence[Cube], camera: CameraResponse) -> list[Pair]:
    return [
        Pair(
            c.name, torch.from_numpy(np.clip(render_rgb(c.data, camera), 0.0, 1.0)), torch.from_numpy(c.data)
        )
        for c in cubes
    ]


def camera_from_file(path: Path, index: int | None = None) -> CameraResponse:
    """A response in the shared `cameras/` format: `filters` (31, 3), or `ssf` with `index`."""
    with np.load(path, allow_pickle=False) as npz:
        has_ssf = "ssf" in npz.files
    if has_ssf:
        cams = load_jiang2013_cameras(path)
        if not 0 <= (index or 0) < len(cams):
            raise ValueError(f"{path}: camera index {index} out of range (the file has {len(cams)} cameras)")
        return cams[index or 0]
    return load_ntire_camera(path)


def camera_from_metadata(meta: dict[str, Any]) -> CameraResponse:
    cam = meta["camera"]
    return make_camera(cam["name"], meta["wavelengths_nm"], np.asarray(cam["response"], dtype=np.float64))


def model_predictor(model: nn.Module) -> Predictor:
    def predict(rgb: Tensor) -> Tensor:
        with torch.inference_mode():
            out = model(rgb)
        return out.hsi if isinstance(model, GANet) else out

    return predict


def rootpoly_predictor(reg: RootPolyRegression) -> Predictor:
    return lambda rgb: reg.predict(rgb[0]).unsqueeze(0)


def tta_predictor(model: GANet, steps: int, cfg: TTAConfig | None = None) -> Predictor:
    adapter = TTAAdapter(model, cfg)
    return lambda rgb: adapter.adapt_one_shot(rgb, steps).hsi


def apply_protocol(pair: Pair, protocol: str, seed: int = 0) -> Pair:
    base = protocol.removesuffix("+tta")
    if base == "plain":
        return pair
    if base == "mixed":
        rgb, hsi = mix_patches(pair.rgb, pair.hsi, 16, torch.Generator().manual_seed(seed))
        return Pair(pair.name, rgb, hsi)
    if base in ("bright+10", "bright-10"):
        return Pair(pair.name, brightness_shift(pair.rgb, 1.1 if base == "bright+10" else 0.9), pair.hsi)
    raise ValueError(f"unknown protocol {protocol!r}; known: {PROTOCOLS}")


def evaluate(
    predict: Predictor,
    pairs: Sequence[Pair],
    protocol: str = "plain",
    report_dir: Path | None = None,
    wavelengths: Sequence[float] = (),
) -> dict[str, Any]:
    """Per-image metrics and their mean (prediction clamped to [0, 1] by the metrics)."""
    images: list[dict[str, Any]] = []
    per_image: list[dict[str, float]] = []
    for i, pair in enumerate(pairs):
        p = apply_protocol(pair, protocol, seed=i)
        pred = predict(p.rgb.unsqueeze(0))[0]
        m = image_metrics(pred, p.hsi)
        per_image.append(m)
        images.append({"name": pair.name, **{k: round(v, 6) for k, v in m.items()}})
        if report_dir is not None:
            title = f"{pair.name} ({protocol})"
            write_report(
                report_dir / f"{pair.name}_{protocol}.png",
                p.rgb,
                p.hsi,
                pred.clamp(0, 1),
                wavelengths,
                title,
                m,
            )
    mean = {k: round(v, 6) for k, v in mean_metrics(per_image).items()}
    return {"protocol": protocol, "mean": mean, "images": images}
