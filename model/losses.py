"""Reconstruction losses shared by stage 1 and stage 2 (and the learned baselines)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from model.metrics import MRAE_FLOOR

Loss = Callable[[Tensor, Tensor], Tensor]


def charbonnier(pred: Tensor, target: Tensor, eps: float = 1e-6) -> Tensor:
    return torch.sqrt((pred - target) ** 2 + eps).mean()


def relative_l1(pred: Tensor, target: Tensor, floor: float = MRAE_FLOOR) -> Tensor:
    """MRAE as a loss (MST++'s training loss), its denominator floored so that black values, which
    CAVE has plenty of, give finite weights: |pred - target| / (target + floor)."""
    return ((pred - target).abs() / (target + floor)).mean()


LOSSES: dict[str, Loss] = {"relative": relative_l1, "charbonnier": charbonnier}
DEFAULT_LOSS = "relative"  # stage 2's, measured against Charbonnier: README, "The model"
