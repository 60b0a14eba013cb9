"""Convolutional blocks shared by stage 1 and stage 2, and the GABlock of GANet."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.layers.attention import GQA
from model.layers.ga import GAGamma, GALog
from model.layers.vq import pixels


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class ResBlock(nn.Module):
    """x + conv3x3(GELU(conv3x3(x)))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.gelu(self.conv1(x)))


class SplitPointwise(nn.Conv2d):
    """A 1x1 conv over the channel concatenation of several maps, without building the concatenation.

    Same parameters as `nn.Conv2d(sum(parts), cout, 1)`; on channels-last maps each part is a
    (pixels, channels) matrix, so the conv is a sum of GEMMs accumulated in place.
    """

    def __init__(self, parts: tuple[int, ...], cout: int) -> None:
        super().__init__(sum(parts), cout, 1)
        self.parts = parts

    def forward(self, *xs: Tensor) -> Tensor:
        if len(xs) != len(self.parts) or any(x.shape[1] != p for x, p in zip(xs, self.parts, strict=True)):
            raise ValueError(f"expected maps with {self.parts} channels")
        B, _, H, W = xs[0].shape
        if not all(x.is_contiguous(memory_format=torch.channels_last) for x in xs):
            return super().forward(torch.cat(xs, dim=1))
        w = self.weight.flatten(1).t()  # (cin, cout)
        assert self.bias is not None
        # mm, in-place addmm_, bias last: `addmm(bias, ...)` first copies the broadcast bias into the
        # output and an out-of-place `out.addmm` copies `out` again, one full-resolution pass each
        # (4.1 -> 3.2 ms for GA-FFN's output conv at 256^2 on this CPU).
        out = torch.mm(pixels(xs[0]).reshape(-1, self.parts[0]), w[: self.parts[0]])
        w = w.to(out.dtype)  # autocast casts `mm`'s operands, never an in-place op's
        start = self.parts[0]
        for x, p in zip(xs[1:], self.parts[1:], strict=True):
            out.addmm_(pixels(x).reshape(-1, p).to(out.dtype), w[start : start + p])
            start += p
        return out.add_(self.bias).view(B, H, W, -1).permute(0, 3, 1, 2)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of every pixel; on a channels-last map the permutes are views."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class GAFFN(nn.Module):
    """Feed-forward with GA_log on one half of the hidden channels and GA_gamma on the other."""

    def __init__(self, channels: int, expansion: int = 2, eps: float = 1e-6) -> None:
        super().__init__()
        if expansion != 2:
            raise ValueError("GA-FFN splits 2c hidden channels into two halves; expansion must be 2")
        self.inp = nn.Conv2d(channels, channels, 1)
        self.dw = nn.Conv2d(channels, 2 * channels, 3, padding=1, groups=channels)
        self.ga_log = GALog(channels, eps)
        self.ga_gamma = GAGamma(channels, eps)
        self.out = SplitPointwise((channels, channels, 2 * channels), channels)

    def forward(self, x: Tensor) -> Tensor:
        # `dw` makes two channels from each of `inp`'s: a grouped conv with two outputs per group,
        # which oneDNN runs 5x slower than a plain depthwise conv on channels-last maps. So `inp`
        # writes each of its channels twice (its weight rows repeated) and a depthwise conv with one
        # output per channel follows: the same function and parameters, bit for bit (256^2, 32
        # channels: 10.3 -> 4.0 ms for both convs on this CPU).
        assert self.inp.bias is not None
        twice = F.conv2d(x, self.inp.weight.repeat_interleave(2, 0), self.inp.bias.repeat_interleave(2))
        h = F.gelu(F.conv2d(twice, self.dw.weight, self.dw.bias, padding=1, groups=self.dw.out_channels))
        h1, h2 = h.chunk(2, dim=1)
        return self.out(self.ga_log(h1), self.ga_gamma(h2), h)


class GABlock(nn.Module):
    """x + GQA(LN(x)); x + GA-FFN(LN(x))."""

    def __init__(
        self,
        channels: int,
        head_dim: int,
        top_t: int,
        full: bool = False,
        full_max_pixels: int = 4096,
        expansion: int = 2,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(channels)
        self.attn = GQA(channels, head_dim, top_t, full, full_max_pixels)
        self.norm2 = LayerNorm2d(channels)
        self.ffn = GAFFN(channels, expansion, eps)

    def forward(self, x: Tensor, idx_bn: Tensor, num_codes: int) -> Tensor:
        x = x + self.attn(self.norm1(x), idx_bn, num_codes)
        return x + self.ffn(self.norm2(x))
