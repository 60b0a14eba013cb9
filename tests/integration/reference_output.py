"""The bundled model's output on one fixed real input, stored so that speed work is held to it.

Optimisations change float rounding (a GEMM split differently, a reduction reordered), and a pixel
whose feature sits near the boundary of two codewords may then pick the other one: a few pixels of a
cube move by up to ~0.02 while the rest agree to ~1e-6. The test therefore states two tolerances:
the whole cube's RMSE, and how many pixels may differ beyond a small bound at all.

After a deliberate change of the weights or of the model's numerics, rewrite the file with
`python -m tests.integration.reference_output` and say why in the commit.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from model.checkpoint import BUNDLED_WEIGHTS, load_checkpoint
from model.config import CAVE_WAVELENGTHS
from model.data import read_cave
from model.evaluate import camera_from_metadata, render_pairs
from model.evaluate_cli import scene_dirs
from model.ganet import GANet
from tests.conftest import SHARED_DATA

REFERENCE = Path(__file__).with_name("reference_mcga_s2.npz")
SIZE = 64  # a crop of the first validation scene: CAVE's real spectra through the model's camera
TOP, LEFT = 224, 224


def weights_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reference_rgb(net_meta: dict[str, object], data: Path = SHARED_DATA) -> torch.Tensor:
    """(1, 3, SIZE, SIZE) linear camera RGB."""
    scene = scene_dirs(data / "cave", "val")[0]
    camera = camera_from_metadata({"wavelengths_nm": list(CAVE_WAVELENGTHS), **net_meta})
    (pair,) = render_pairs([read_cave(scene)], camera)
    return pair.rgb[:, TOP : TOP + SIZE, LEFT : LEFT + SIZE].unsqueeze(0)


def current_output(weights: Path = BUNDLED_WEIGHTS, data: Path = SHARED_DATA) -> np.ndarray:
    """(31, SIZE, SIZE) float32: what the model in this checkout makes of the reference input."""
    ck = load_checkpoint(weights)
    assert isinstance(ck.model, GANet)
    with torch.inference_mode():
        return ck.model.eval()(reference_rgb(ck.metadata, data)).hsi[0].numpy()


def write(weights: Path = BUNDLED_WEIGHTS) -> None:
    np.savez_compressed(
        REFERENCE, hsi=current_output(weights).astype(np.float16), weights_sha256=weights_digest(weights)
    )


if __name__ == "__main__":
    write()
    print(f"wrote {REFERENCE}")
