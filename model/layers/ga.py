"""Grayscale-Aware (GA) operations: learned, per-channel brightness curves (MODEL.md, "GA operation").

The GA parameters `weight` (c, c) and `bias` (c) are what test-time adaptation tunes. They may also
be given per sample, shaped (B, c, c) and (B, c) (via `torch.func.functional_call`), so one forward
and one backward adapt many sessions at once, each by its own gradient.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def minmax_affine(y_bchw: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """(scale, shift), each (B, c, 1, 1), with `y * scale + shift` the per-sample, per-channel min-max
    normalisation over H x W to [0, 1]; the affine folds into the next op.

    Two reductions, not `aminmax`: over a channels-last map's spatial dims torch's fused `aminmax`
    took 6-11x the time of `amin` plus `amax` (4.3 ms against 0.65 ms for 32 x 256^2 on this CPU),
    about a tenth of a whole GANet-S2 forward.
    """
    B, c = y_bchw.shape[:2]
    lo, hi = y_bchw.amin(dim=(2, 3)), y_bchw.amax(dim=(2, 3))
    scale = 1.0 / (hi - lo + eps)
    return scale.view(B, c, 1, 1), (-lo * scale).view(B, c, 1, 1)


def minmax_normalise(y_bchw: Tensor, eps: float) -> Tensor:
    """Per-sample, per-channel min-max normalisation over H x W to [0, 1]."""
    scale, shift = minmax_affine(y_bchw, eps)
    return torch.addcmul(shift, y_bchw, scale)


class GAOperation(nn.Module):
    """Base: channel weights `a = softmax(W GAP(Y) + b)` from the input's global average.

    The curve computes in float32 whatever the autocast dtype (no cost for float32 inputs): min-max
    normalised in bfloat16, a channel's minimum comes out a rounding step below 0, and `log` of it,
    eps or not, is NaN; `(Y_n + eps)^g` with g up to 10 would magnify half-precision rounding too.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(channels, channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, y_bchw: Tensor) -> Tensor:
        with torch.autocast(y_bchw.device.type, enabled=False):
            return self.curve(y_bchw.to(torch.promote_types(y_bchw.dtype, torch.float32)))

    def curve(self, y_bchw: Tensor) -> Tensor:
        raise NotImplementedError

    def channel_weights(self, y_bchw: Tensor) -> Tensor:
        gap_bc = y_bchw.mean(dim=(2, 3))
        if self.weight.dim() == 3:  # per-sample GA parameters (B, c, c), (B, c)
            logits_bc = torch.bmm(self.weight, gap_bc.unsqueeze(2)).squeeze(2) + self.bias
        else:
            logits_bc = torch.addmm(self.bias, gap_bc, self.weight.t())
        return torch.softmax(logits_bc, dim=1)


class GALog(GAOperation):
    """GA_log: `G = log1p(a' Y_n) / log1p(a')` with `a'` the channel weights rescaled to [1, 5]."""

    def curve(self, y_bchw: Tensor) -> Tensor:
        a_bc = self.channel_weights(y_bchw)
        lo = a_bc.amin(dim=1, keepdim=True)
        hi = a_bc.amax(dim=1, keepdim=True)
        a1_bc11 = (1.0 + 4.0 * (a_bc - lo) / (hi - lo + self.eps))[:, :, None, None]
        scale, shift = minmax_affine(y_bchw, self.eps)
        return (
            torch.log1p(torch.addcmul(a1_bc11 * shift, y_bchw, a1_bc11 * scale))
            * torch.log1p(a1_bc11).reciprocal()
        )


class GAGamma(GAOperation):
    """GA_gamma: `G = (Y_n + eps)^g`, `g = clamp(c a, 0.1, 10)` (mean exponent 1)."""

    def curve(self, y_bchw: Tensor) -> Tensor:
        g_bc11 = (self.channels * self.channel_weights(y_bchw)).clamp(0.1, 10.0)[:, :, None, None]
        scale, shift = minmax_affine(y_bchw, self.eps)
        # exp(g log x), not `pow`: the base is at least eps > 0, and torch's pow with a per-channel
        # exponent took 2.4x as long (4.8 against 2.0 ms for 32 x 256^2 on this CPU).
        return torch.exp(torch.log(torch.addcmul(shift + self.eps, y_bchw, scale)) * g_bc11)
