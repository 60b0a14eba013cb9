"""Grayscale-aware quantized self-attention (GQA) and the full pixel attention it approximates.

Every pixel attends to the `T` most used codebook clusters of its sample instead of to every other
pixel: O(N T c) instead of O(N^2 c). Cluster keys and values are the means over the cluster's
pixels, and `log n_t` weights each cluster by its size, so that when all of a cluster's vectors are
equal the result is exactly full attention (the invariant the tests check).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.layers.vq import pixels


def cluster_slots(idx_bn: Tensor, num_codes: int, top_t: int) -> tuple[Tensor, Tensor]:
    """Map each pixel to its cluster's slot among the sample's `top_t` most used codes.

    Returns `slot_bn` (pixels of clusters not kept get slot `top_t`, a discard slot) and the kept
    clusters' pixel counts `n_bt` (0 for empty slots when fewer than `top_t` codes are used).
    """
    B, _ = idx_bn.shape
    t = min(top_t, num_codes)
    offsets_b1 = torch.arange(B, device=idx_bn.device).unsqueeze(1) * num_codes
    counts_bk = torch.bincount((idx_bn + offsets_b1).flatten(), minlength=B * num_codes).view(B, num_codes)
    n_bt, codes_bt = counts_bk.topk(t, dim=1)
    lut_bk = torch.full((B, num_codes), t, dtype=torch.long, device=idx_bn.device)
    lut_bk.scatter_(1, codes_bt, torch.arange(t, device=idx_bn.device).expand(B, t))
    return lut_bk.gather(1, idx_bn), n_bt


def cluster_means(x_bnc: Tensor, slot_bn: Tensor, n_bt: Tensor) -> Tensor:
    """Mean of `x` over the pixels of each kept cluster: (B, T, c)."""
    B, n, c = x_bnc.shape
    t = n_bt.shape[1]
    flat_slot = (slot_bn + torch.arange(B, device=slot_bn.device).unsqueeze(1) * (t + 1)).reshape(-1)
    sums = x_bnc.new_zeros(B * (t + 1), c).index_add_(0, flat_slot, x_bnc.reshape(B * n, c))
    return sums.view(B, t + 1, c)[:, :t] / n_bt.clamp(min=1).unsqueeze(2).to(x_bnc.dtype)


def _heads(x_bnc: Tensor, heads: int) -> Tensor:
    B, n, c = x_bnc.shape
    return x_bnc.view(B, n, heads, c // heads).transpose(1, 2)


def quantized_attention(
    q_bnc: Tensor, x_bnc: Tensor, w_kv: Tensor, idx_bn: Tensor, num_codes: int, top_t: int, heads: int
) -> Tensor:
    """Attention of every pixel to the top-`top_t` clusters of its sample: (B, N, c).

    Keys and values are linear in the input without bias, so a cluster's mean key and value are
    `W_k`, `W_v` applied to the cluster's mean input: one cluster sum over `x`, then (2c, c) x T.
    """
    B, n, c = q_bnc.shape
    slot_bn, n_bt = cluster_slots(idx_bn, num_codes, top_t)
    kv_btc = cluster_means(x_bnc, slot_bn, n_bt) @ w_kv.t()
    k_btc, v_btc = kv_btc[..., :c], kv_btc[..., c:]
    log_n_bt = n_bt.to(q_bnc.dtype).log()  # -inf for empty slots: they get no weight
    out_bhnc = F.scaled_dot_product_attention(
        _heads(q_bnc, heads), _heads(k_btc, heads), _heads(v_btc, heads), attn_mask=log_n_bt[:, None, None, :]
    )
    return out_bhnc.transpose(1, 2).reshape(B, n, c)


def full_attention(q_bnc: Tensor, k_bnc: Tensor, v_bnc: Tensor, heads: int) -> Tensor:
    """O(N^2) attention of every pixel to every pixel (the paper's ablation): (B, N, c)."""
    B, n, c = q_bnc.shape
    out = F.scaled_dot_product_attention(_heads(q_bnc, heads), _heads(k_bnc, heads), _heads(v_bnc, heads))
    return out.transpose(1, 2).reshape(B, n, c)


class GQA(nn.Module):
    """Quantized self-attention over a level's codebook assignment, plus a depthwise positional branch."""

    def __init__(
        self, channels: int, head_dim: int, top_t: int, full: bool = False, full_max_pixels: int = 4096
    ) -> None:
        super().__init__()
        self.heads = max(1, channels // head_dim)
        if channels % self.heads:
            raise ValueError(f"{channels} channels do not split into {self.heads} heads")
        self.top_t = top_t
        self.full = full
        self.full_max_pixels = full_max_pixels
        self.qkv = nn.Conv2d(channels, 3 * channels, 1, bias=False)
        self.proj = nn.Conv2d(channels, channels, 1)
        self.pos = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels),
            nn.GELU(),
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels),
        )

    def forward(self, x_bchw: Tensor, idx_bn: Tensor, num_codes: int) -> Tensor:
        B, c, H, W = x_bchw.shape
        if self.full:
            if self.full_max_pixels < H * W:
                raise ValueError(
                    f"full pixel attention is for small inputs only ({H}x{W} > "
                    f"{self.full_max_pixels} pixels); use quantized attention"
                )
            qkv_bnc = pixels(self.qkv(x_bchw))
            q, k, v = qkv_bnc[..., :c], qkv_bnc[..., c : 2 * c], qkv_bnc[..., 2 * c :]
            out_bnc = full_attention(q, k, v, self.heads)
        else:
            # Keys are never needed per pixel (see `quantized_attention`); values only for `pos`.
            w_q, w_kv = self.qkv.weight[:c], self.qkv.weight[c:]
            q_map, v = F.conv2d(x_bchw, w_q), F.conv2d(x_bchw, w_kv[c:])
            out_bnc = quantized_attention(
                pixels(q_map), pixels(x_bchw), w_kv.flatten(1), idx_bn, num_codes, self.top_t, self.heads
            )
            return self.proj(out_bnc.view(B, H, W, c).permute(0, 3, 1, 2)) + self.pos(v)
        return self.proj(out_bnc.view(B, H, W, c).permute(0, 3, 1, 2)) + self.pos(
            v.reshape(B, H, W, c).permute(0, 3, 1, 2)
        )
