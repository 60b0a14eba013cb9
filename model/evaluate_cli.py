"""The `mcga eval` command: load weights, render the scenes through a camera, run the protocols."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.baselines import RootPolyRegression
from model.checkpoint import BUNDLED_WEIGHTS, load_checkpoint
from model.config import CAVE_WAVELENGTHS, TTAConfig
from model.data import list_cave_scenes, read_cave
from model.data.spectra import CameraResponse
from model.evaluate import (
    PROTOCOLS,
    Predictor,
    camera_from_file,
    camera_from_metadata,
    evaluate,
    model_predictor,
    render_pairs,
    rootpoly_predictor,
    tta_predictor,
)
from model.ganet import GANet
from model.layers.consistency import CameraConsistency
from model.train.sources import CAVE_VAL_SCENES, DEFAULT_CAMERA, cameras

log = logging.getLogger(__name__)


def scene_dirs(data: Path, split: str) -> list[Path]:
    scenes = list_cave_scenes(data)
    if split == "all":
        return scenes
    is_val = [p.name.removesuffix("_ms") in CAVE_VAL_SCENES for p in scenes]
    chosen = [p for p, v in zip(scenes, is_val, strict=True) if v == (split == "val")]
    if not chosen:
        log.info("%s has none of the documented %s scenes: evaluating all %d", data, split, len(scenes))
        return scenes
    return chosen


def load_predictors(
    weights: Path, tta_steps: int, tta: TTAConfig | None = None, tta_tau: float | None = None
) -> tuple[Predictor, Predictor | None, dict[str, Any]]:
    """(plain predictor, TTA predictor or None, metadata) for a checkpoint or a root-poly .npz;
    `tta_tau` overrides the checkpoint's entropy temperature (plain outputs do not depend on it)."""
    if weights.suffix == ".npz":
        with np.load(weights, allow_pickle=False) as npz:
            reg = RootPolyRegression.from_state_dict({k: npz[k] for k in npz.files})
        return rootpoly_predictor(reg), None, {"name": "root-poly", "wavelengths_nm": list(CAVE_WAVELENGTHS)}
    ck = load_checkpoint(weights)
    meta = {"name": ck.kind, "wavelengths_nm": list(CAVE_WAVELENGTHS), **ck.metadata, "version": ck.version}
    if not isinstance(ck.model, GANet):
        return model_predictor(ck.model), None, meta
    if tta_tau is not None:
        ck.model.cfg = replace(ck.model.cfg, tta_tau=tta_tau)
    meta["tta_tau"] = ck.model.cfg.tta_tau
    return model_predictor(ck.model), tta_predictor(ck.model, tta_steps, tta), meta


def projected(predict: Predictor, camera: CameraResponse) -> Predictor:
    """`predict` followed by the camera-consistency projection (for models without it built in)."""
    layer = CameraConsistency(camera.matrix.shape[0])
    layer.set_response(torch.from_numpy(camera.matrix))
    return lambda rgb: layer(predict(rgb), rgb)


class UsageError(Exception):
    """A command line `mcga eval` cannot run: one line to the user and exit code 2, no traceback."""


def _protocols(text: str) -> list[str]:
    chosen = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in PROTOCOLS]
    if not chosen or unknown:
        raise UsageError(f"--protocols {text!r}: choose from {', '.join(PROTOCOLS)}")
    return chosen


def _scenes(data: Path, split: str) -> list[Path]:
    if not data.is_dir():
        raise UsageError(f"--data {data}: no such folder (a folder of CAVE-layout scenes)")
    dirs = scene_dirs(data, split)
    if not dirs:
        raise UsageError(f"--data {data}: no CAVE-layout scene in it (a folder per scene of 31 PNG bands)")
    return dirs


def run_eval(args: argparse.Namespace) -> int:
    try:
        return _run_eval(args)
    except UsageError as exc:
        log.error("%s", exc)
        return 2


def _run_eval(args: argparse.Namespace) -> int:
    torch.manual_seed(0)
    protocols = _protocols(args.protocols)
    if args.camera_index is not None and args.camera is None:
        raise UsageError("--camera-index picks a camera of the --camera file; give --camera too")
    scenes = _scenes(args.data, args.split)
    weights: Path = args.weights or BUNDLED_WEIGHTS
    try:
        plain, tta, meta = load_predictors(weights, args.tta_steps, TTAConfig(lr=args.tta_lr), args.tta_tau)
    except (OSError, ValueError, KeyError) as exc:  # CheckpointError is a ValueError
        raise UsageError(f"--weights {weights}: {exc}") from exc
    camera: CameraResponse
    if args.camera is not None:
        try:
            camera = camera_from_file(args.camera, args.camera_index)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"bad --camera {args.camera}: {exc}") from exc
    elif "camera" in meta:
        camera = camera_from_metadata(meta)
    else:
        camera = (
            cameras(args.data.parent / "cameras")[0]
            if (args.data.parent / "cameras").is_dir()
            else camera_from_file(Path("../shared/data/cameras/cie_1964_w_gain.npz"))
        )
    if args.project:
        plain = projected(plain, camera)
        tta = projected(tta, camera) if tta is not None else None
    try:
        cubes = [read_cave(p) for p in scenes]
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    pairs = render_pairs(cubes, camera)
    results: dict[str, Any] = {}
    for protocol in protocols:
        if protocol.endswith("+tta") and tta is None:
            continue
        predict = tta if protocol.endswith("+tta") and tta is not None else plain
        report = args.report / protocol if args.report is not None and protocol == "plain" else None
        results[protocol] = evaluate(predict, pairs, protocol, report, meta["wavelengths_nm"])
        log.info("%s: %s", protocol, results[protocol]["mean"])
    if not results:
        raise UsageError(f"--protocols {args.protocols!r}: TTA protocols need a GANet checkpoint")
    # The top-level figures are the plain protocol's when it ran (the interface other tools read),
    # else the first protocol's; `protocol` names which.
    first = results.get("plain", next(iter(results.values())))
    out = {
        "weights": str(weights),
        "model": meta.get("name"),
        "camera": camera.name
        if args.camera is not None
        else meta.get("camera", {}).get("name", DEFAULT_CAMERA),
        "scenes": [p.name for p in pairs],
        "tta_steps": args.tta_steps,
        "tta_lr": args.tta_lr,
        "tta_tau": meta.get("tta_tau"),
        "projected": bool(args.project),
        "protocol": first["protocol"],
        "mean": first["mean"],
        "images": first["images"],
        "protocols": {k: v["mean"] for k, v in results.items()},
    }
    text = json.dumps(out, indent=None if args.json else 2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(text)
    return 0
