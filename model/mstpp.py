"""MST++ (Cai et al., CVPR-W 2022): the multi-stage spectral-wise transformer, kept as a reference baseline.

Written from the paper. Attention runs across spectral channels, not pixels, so its cost grows linearly
with the image area; each stage is a small U-Net of spectral-wise attention blocks (SABs), and the stages
are chained so later ones refine the earlier estimate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.config import MSTPPConfig

HEAD_DIM = 31  # channels per attention head at every level (heads = channels / 31)
LEVELS = 2  # downsamplings inside each stage: 31 -> 62 -> 124 channels
PAD_MULTIPLE = 8  # inputs are reflect-padded to this (2**LEVELS would do; 8 matches the published model)
FFN_EXPANSION = 4


class SpectralMSA(nn.Module):
    """Spectral-wise multi-head self-attention (S-MSA): each channel is a token, each head a d x d map.

    Q and K are L2-normalised over the pixels, so the logits are cosine similarities that a learnable
    per-head temperature rescales; a depthwise-conv branch on V restores the positional information
    that channel tokens lack.
    """

    def __init__(self, dim: int, head_dim: int = HEAD_DIM) -> None:
        super().__init__()
        if dim % head_dim:
            raise ValueError(f"channels {dim} are not a multiple of the head dimension {head_dim}")
        self.heads = dim // head_dim
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.temperature = nn.Parameter(torch.ones(self.heads, 1, 1))
        self.proj = nn.Linear(dim, dim)
        self.pos_emb = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=False),
            nn.GELU(),
            nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=False),
        )

    def _split_heads(self, x_bnc: Tensor) -> Tensor:
        B, N, C = x_bnc.shape
        return x_bnc.transpose(1, 2).reshape(B, self.heads, C // self.heads, N)  # (B, nh, d, N)

    def forward(self, x_bhwc: Tensor) -> Tensor:
        B, H, W, C = x_bhwc.shape
        x_bnc = x_bhwc.reshape(B, H * W, C)
        v_bnc = self.to_v(x_bnc)
        q = F.normalize(self._split_heads(self.to_q(x_bnc)), dim=-1)
        k = F.normalize(self._split_heads(self.to_k(x_bnc)), dim=-1)
        v = self._split_heads(v_bnc)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)  # (B, nh, d, d)
        out_bnc = (attn @ v).reshape(B, C, H * W).transpose(1, 2)
        out_bhwc = self.proj(out_bnc).reshape(B, H, W, C)
        v_bchw = v_bnc.transpose(1, 2).reshape(B, C, H, W)
        return out_bhwc + self.pos_emb(v_bchw).permute(0, 2, 3, 1)


class FeedForward(nn.Module):
    """Pointwise expand, depthwise 3x3 for local context, pointwise project back."""

    def __init__(self, dim: int, expansion: int = FFN_EXPANSION) -> None:
        super().__init__()
        hidden = dim * expansion
        self.net = nn.Sequential(
            nn.Conv2d(dim, hidden, 1, bias=False),
            nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),
            nn.GELU(),
            nn.Conv2d(hidden, dim, 1, bias=False),
        )

    def forward(self, x_bhwc: Tensor) -> Tensor:
        return self.net(x_bhwc.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class SpectralAttentionBlock(nn.Module):
    """SAB: S-MSA then pre-norm FFN, each with a residual connection.

    Only the FFN has a layer norm in front: S-MSA L2-normalises Q and K itself, and this layout gives
    the published 1.62 M parameters (a second norm would add 1,860).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.attn = SpectralMSA(dim)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim)

    def forward(self, x_bchw: Tensor) -> Tensor:
        x_bhwc = x_bchw.permute(0, 2, 3, 1)
        x_bhwc = x_bhwc + self.attn(x_bhwc)
        x_bhwc = x_bhwc + self.ffn(self.norm_ffn(x_bhwc))
        return x_bhwc.permute(0, 3, 1, 2)


class SingleStageTransformer(nn.Module):
    """SST: a U-shaped encoder-decoder of SABs with a residual from the stage input to its output."""

    def __init__(self, dim: int, levels: int = LEVELS) -> None:
        super().__init__()
        self.embedding = nn.Conv2d(dim, dim, 3, padding=1, bias=False)
        widths = [dim * 2**i for i in range(levels)]
        self.encoder = nn.ModuleList(SpectralAttentionBlock(c) for c in widths)
        self.down = nn.ModuleList(nn.Conv2d(c, 2 * c, 4, stride=2, padding=1, bias=False) for c in widths)
        self.bottleneck = SpectralAttentionBlock(dim * 2**levels)
        self.up = nn.ModuleList(nn.ConvTranspose2d(2 * c, c, 2, stride=2) for c in widths)
        self.fuse = nn.ModuleList(nn.Conv2d(2 * c, c, 1, bias=False) for c in widths)
        self.decoder = nn.ModuleList(SpectralAttentionBlock(c) for c in widths)
        self.mapping = nn.Conv2d(dim, dim, 3, padding=1, bias=False)

    def forward(self, x_bchw: Tensor) -> Tensor:
        h = self.embedding(x_bchw)
        skips: list[Tensor] = []
        for block, down in zip(self.encoder, self.down):
            h = block(h)
            skips.append(h)
            h = down(h)
        h = self.bottleneck(h)
        for i in reversed(range(len(skips))):
            h = self.up[i](h)
            h = self.fuse[i](torch.cat([h, skips[i]], dim=1))
            h = self.decoder[i](h)
        return self.mapping(h) + x_bchw


class MSTPlusPlus(nn.Module):
    """RGB (B, 3, H, W) -> spectral cube (B, 31, H, W): input conv, chained SSTs, output conv, residual.

    Any H, W works: the input is padded to a multiple of PAD_MULTIPLE (reflect, or replicate where the
    image is too small to reflect) and the output cropped back.
    """

    def __init__(self, cfg: MSTPPConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or MSTPPConfig()
        if cfg.n_feat != cfg.out_channels:
            raise ValueError("n_feat must equal out_channels: the global residual adds features to bands")
        self.multiple = PAD_MULTIPLE
        self.conv_in = nn.Conv2d(cfg.in_channels, cfg.n_feat, 3, padding=1, bias=False)
        self.body = nn.Sequential(*(SingleStageTransformer(cfg.n_feat) for _ in range(cfg.stages)))
        self.conv_out = nn.Conv2d(cfg.n_feat, cfg.out_channels, 3, padding=1, bias=False)
        self.apply(_init_weights)

    def forward(self, x_bchw: Tensor) -> Tensor:
        H, W = x_bchw.shape[-2:]
        pad_h, pad_w = -H % self.multiple, -W % self.multiple
        if pad_h or pad_w:
            mode = "reflect" if pad_h < H and pad_w < W else "replicate"
            x_bchw = F.pad(x_bchw, (0, pad_w, 0, pad_h), mode=mode)
        feat = self.conv_in(x_bchw)
        out = self.conv_out(self.body(feat)) + feat
        return out[..., :H, :W]


def _init_weights(module: nn.Module) -> None:
    """Transformer-style init: small truncated-normal linear weights, identity layer norms."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


__all__ = ["MSTPlusPlus", "SingleStageTransformer", "SpectralAttentionBlock", "SpectralMSA"]
