"""Pad images to a multiple of the network's stride and crop back, so any H x W works."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def pad_to_multiple(x_bchw: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Replicate-pad bottom/right to a multiple of `multiple`; returns the padded tensor and (H, W)."""
    H, W = x_bchw.shape[-2:]
    ph, pw = (-H) % multiple, (-W) % multiple
    if ph or pw:
        x_bchw = F.pad(x_bchw, (0, pw, 0, ph), mode="replicate")
    return x_bchw, (H, W)
