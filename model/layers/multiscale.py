"""Algorithm 1 (residual multi-scale quantization) and Algorithm 2 (multi-scale reconstruction).

Scale i = 1..S (list index i - 1) has downsampling factor r_i = 2^(S - i): index 0 is the coarsest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch.nn.functional as F
from torch import Tensor, nn

from model.layers.blocks import ResBlock, SplitPointwise, conv3x3
from model.layers.vq import gather_codewords, nearest_codeword, pixels, straight_through


def scale_factor(scale_index: int, scales: int) -> int:
    """Downsampling factor of scale `scale_index` (0 = coarsest)."""
    return 2 ** (scales - 1 - scale_index)


def area_down(x: Tensor, factor: int) -> Tensor:
    return x if factor == 1 else F.avg_pool2d(x, factor)


def upsample_to(x: Tensor, height: int, width: int) -> Tensor:
    if x.shape[-2:] == (height, width):
        return x
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)


def quantize_map(f_bdhw: Tensor, codebook_kd: Tensor, chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """Nearest codewords of a feature map: (codeword map (B, d, H, W), indices (B, H*W))."""
    idx_bn = nearest_codeword(pixels(f_bdhw), codebook_kd, chunk)
    return gather_codewords(idx_bn, codebook_kd, *f_bdhw.shape[-2:]), idx_bn


@dataclass
class Quantized:
    """Algorithm 1's output per scale (coarsest first).

    `f` (searched features) and `q` (their codewords) enter the codebook losses; `z` is what the
    decoder reads: `q` in value, the identity to the encoder in gradient (straight-through), times
    the feature's norm under shape-gain quantization.
    """

    f: list[Tensor]
    q: list[Tensor]
    idx: list[Tensor]
    z: list[Tensor]


def shape_gain(f_raw: Tensor, unit_st: Tensor, enabled: bool) -> Tensor:
    """Shape-gain VQ: the searched direction's codeword scaled back by the feature's own norm."""
    return unit_st * f_raw.norm(dim=1, keepdim=True) if enabled else unit_st


class ResidualQuantizer(nn.Module):
    """Algorithm 1: R = Z; f_i = area_down(R, r_i); q_i = Quantize(f_i, B_i); R -= phi_i(up(q_i)).

    The residual left after the last scale is never used, so `phi_S` would get no gradient: only
    S - 1 `phi` convs exist.
    """

    def __init__(self, latent_dim: int, scales: int, normalized: bool = False, gain: bool = False) -> None:
        super().__init__()
        self.scales = scales
        self.normalized = normalized
        self.gain = gain and normalized
        self.phi = nn.ModuleList(conv3x3(latent_dim, latent_dim) for _ in range(scales - 1))

    def forward(self, z_bdhw: Tensor, codebooks: list[Tensor]) -> Quantized:
        H, W = z_bdhw.shape[-2:]
        residual = z_bdhw
        out = Quantized([], [], [], [])
        for i in range(self.scales):
            f_raw = area_down(residual, scale_factor(i, self.scales))
            f = F.normalize(f_raw, dim=1, eps=1e-6) if self.normalized else f_raw
            q, idx = quantize_map(f, codebooks[i])
            z = shape_gain(f_raw, straight_through(f, q), self.gain)
            out.f.append(f)
            out.q.append(q)
            out.idx.append(idx)
            out.z.append(z)
            if i < self.scales - 1:
                residual = residual - self.phi[i](upsample_to(z, H, W))
        return out


class MultiScaleDecoder(nn.Module):
    """Algorithm 2: h_1 = g_1(q_1); h_i = g_i(concat(up(h_{i-1}), q_i)); returns h_S (d channels).

    `g_i` = conv1x1 (fusing the concatenation, without building it: `SplitPointwise`) + residual
    block; the band-specific output conv lives with the caller (one per dataset in stage 1, the
    target dataset's in stage 2).
    """

    def __init__(self, latent_dim: int, scales: int) -> None:
        super().__init__()
        d = latent_dim
        self.g = nn.ModuleList(
            nn.Sequential(SplitPointwise((d, d), d) if i else nn.Conv2d(d, d, 1), ResBlock(d))
            for i in range(scales)
        )

    def forward(self, q: list[Tensor]) -> Tensor:
        h = self.g[0](q[0])
        for g_i, q_i in zip(self.g[1:], q[1:], strict=True):
            fuse, res = cast(nn.Sequential, g_i)
            h = res(fuse(upsample_to(h, *q_i.shape[-2:]), q_i))
        return h
