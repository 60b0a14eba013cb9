"""Grayscale-Aware (GA) operations: learned, per-channel brightness curves (MODEL.md, "GA operation").

The GA parameters `weight` (c, c) and `bias` (c) are what test-time adaptation tunes. They may also
be given per sample, shaped (B, c, c) and (B, c) (via `torch.func.functional_call`), so one forward
and one backward adapt many sessions at once, each by its own gradient.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def minmax_normalise(y_bchw: Tensor, eps: float) -> Tensor:
    """Per-sample, per-channel min-max normalisation over H x W to [0, 1]."""
    lo = y_bchw.amin(dim=(2, 3), keepdim=True)
    hi = y_bchw.amax(dim=(2, 3), keepdim=True)
    return (y_bchw - lo) / (hi - lo + eps)


class GAOperation(nn.Module):
    """Base: channel weights `a = softmax(W GAP(Y) + b)` from the input's global average."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(channels, channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def channel_weights(self, y_bchw: Tensor) -> Tensor:
        gap_bc = y_bchw.mean(dim=(2, 3))
        if self.weight.dim() == 3:  # per-sample GA parameters (B, c, c), (B, c)
            logits_bc = torch.bmm(self.weight, gap_bc.unsqueeze(2)).squeeze(2) + self.bias
        else:
            logits_bc = torch.addmm(self.bias, gap_bc, self.weight.t())
        return torch.softmax(logits_bc, dim=1)


class GALog(GAOperation):
    """GA_log: `G = log1p(a' Y_n) / log1p(a')` with `a'` the channel weights rescaled to [1, 5]."""

    def forward(self, y_bchw: Tensor) -> Tensor:
        a_bc = self.channel_weights(y_bchw)
        lo = a_bc.amin(dim=1, keepdim=True)
        hi = a_bc.amax(dim=1, keepdim=True)
        a1_bc11 = (1.0 + 4.0 * (a_bc - lo) / (hi - lo + self.eps))[:, :, None, None]
        return torch.log1p(a1_bc11 * minmax_normalise(y_bchw, self.eps)) / torch.log1p(a1_bc11)


class GAGamma(GAOperation):
    """GA_gamma: `G = (Y_n + eps)^g`, `g = clamp(c a, 0.1, 10)` (mean exponent 1)."""

    def forward(self, y_bchw: Tensor) -> Tensor:
        g_bc11 = (self.channels * self.channel_weights(y_bchw)).clamp(0.1, 10.0)[:, :, None, None]
        return (minmax_normalise(y_bchw, self.eps) + self.eps).pow(g_bc11)
