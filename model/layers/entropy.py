"""Codebook-query entropy, the TTA loss of one search, in cache-sized pixel chunks and few passes.

The plain autograd formula (`log_softmax`, `exp`, `p * log p` and their backward) makes about a
dozen passes over a (pixels x codewords) tensor per search, 36 MB at 128^2 with 544 codewords, and
keeps several of them alive for the backward. Here the forward and the backward each walk the pixels
in chunks that stay in cache, keep two floats per pixel in between, and make four elementwise passes
each: the per-pixel shifts are folded into the distance GEMM (one extra column), so the forward's
logits come out as -D / tau and the backward's as log p directly. The value and the gradient equal
the plain formula's up to float rounding (a unit test holds them to it).

With l = -D / tau = (2 / tau) (z.c - ||c||^2 / 2 - ||z||^2 / 2), p = softmax(l), t = log p =
l - logsumexp(l) and H = -sum_k p_k t_k: dH/dl_k = -p_k (t_k + H); dl/dz = (2 / tau) c up to a
per-pixel term that softmax ignores; dl_k/dc_k = (2 / tau) (z - c_k).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

_CHUNK_ELEMENTS = 1 << 19  # logits per chunk: 2 MiB of float32, about one core's L2
_MIN_LSE = math.log(1e-30)  # below it exp(-D / tau) underflowed for some pixel: redo with its maximum out


def _chunk_rows(codewords: int) -> int:
    return max(16, _CHUNK_ELEMENTS // max(1, codewords))


def _with_column(x: Tensor, column: Tensor) -> Tensor:
    """[x, column] (n, d+1). With rows [z, s] and codewords [c, 1], one GEMM gives z.c + s."""
    return torch.cat([x, column.unsqueeze(1)], 1)


def _half_sq_norms(x: Tensor) -> Tensor:
    return 0.5 * (x * x).sum(1)


def _entropy_terms(logits: Tensor) -> tuple[Tensor, Tensor]:
    """(logsumexp, entropy) per row of logits that are <= 0 with their maximum not far below 0."""
    weights = logits.exp()
    total = weights.sum(1)
    mean_logit = torch.linalg.vecdot(weights, logits).div_(total)
    lse = total.log_()
    return lse, lse - mean_logit


def _operands(z_bnd: Tensor, codebook_kd: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(pixel rows (B*n, d), codebook (K, d), its bias -||c||^2 / 2, and [c, 1] (K, d+1)), detached."""
    B, n, d = z_bnd.shape
    cb = codebook_kd.detach()
    return (
        z_bnd.detach().reshape(B * n, d),
        cb,
        -_half_sq_norms(cb),
        _with_column(cb, cb.new_ones(cb.shape[0])),
    )


class _QueryEntropy(torch.autograd.Function):
    """Forward keeps two floats per pixel, H and the extra GEMM column that turns the backward's
    logits into log p (-||z||^2 / 2 - logsumexp(l) / scale); the backward rebuilds p from them."""

    @staticmethod
    def forward(ctx: FunctionCtx, z_bnd: Tensor, codebook_kd: Tensor, scale: float) -> Tensor:
        B, n, _ = z_bnd.shape
        rows, cb, bias, cb_aug = _operands(z_bnd, codebook_kd)
        lse, entropy, half_sq = rows.new_empty(B * n), rows.new_empty(B * n), _half_sq_norms(rows)
        step = _chunk_rows(cb.shape[0])
        for s in range(0, B * n, step):
            chunk, sl = rows[s : s + step], slice(s, s + step)
            z_aug = _with_column(chunk, -half_sq[sl])
            logits = torch.addmm(bias, z_aug, cb_aug.t(), beta=scale, alpha=scale)  # -D / tau <= 0
            lse[sl], entropy[sl] = _entropy_terms(logits)
            if bool(lse[sl].amin() < _MIN_LSE):  # every codeword far from some pixel: shift by its max
                top = logits.amax(1, keepdim=True)
                chunk_lse, entropy[sl] = _entropy_terms(logits.sub_(top))
                lse[sl] = chunk_lse + top.squeeze(1)
        ctx.save_for_backward(z_bnd, codebook_kd, half_sq.neg_().sub_(lse / scale), entropy)
        ctx.scale = scale  # type: ignore[attr-defined]
        return entropy.view(B, n).mean(1)

    @staticmethod
    def backward(ctx: Any, grad_b: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        with torch.autocast(grad_b.device.type, enabled=False):  # a backward called under autocast
            return _QueryEntropy._backward(ctx, grad_b.to(ctx.saved_tensors[0].dtype))

    @staticmethod
    def _backward(ctx: Any, grad_b: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        z_bnd, codebook_kd, log_p_column, entropy = ctx.saved_tensors
        scale: float = ctx.scale
        B, n, d = z_bnd.shape
        rows, cb, bias, cb_aug = _operands(z_bnd, codebook_kd)
        # d(mean over pixels)/d(each pixel's entropy), times the logits' scale, negated (dH/dl = -p (t + H))
        weight = (grad_b * (-scale / n)).repeat_interleave(n)
        want_z, want_cb = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_rows = torch.empty_like(rows) if want_z else None
        grad_cb = torch.zeros_like(cb) if want_cb else None
        step = _chunk_rows(cb.shape[0])
        for s in range(0, B * n, step):
            chunk, sl = rows[s : s + step], slice(s, s + step)
            z_aug = _with_column(chunk, log_p_column[sl])
            log_p = torch.addmm(bias, z_aug, cb_aug.t(), beta=scale, alpha=scale)
            g = log_p.exp().mul_(log_p.add_(entropy[sl].unsqueeze(1)))  # p (t + H), per-row weight below
            w = weight[sl].unsqueeze(1)
            if grad_rows is not None:
                torch.mm(g, cb, out=grad_rows[sl]).mul_(w)
            if grad_cb is not None:
                g.mul_(w)
                grad_cb.add_(g.t() @ chunk).sub_(g.sum(0).unsqueeze(1) * cb)
        grad_z = grad_rows.view(B, n, d) if grad_rows is not None else None
        return grad_z, grad_cb, None


def query_entropy(z_bnd: Tensor, codebook_kd: Tensor, tau: float = 1.0) -> Tensor:
    """Per-sample mean entropy of softmax(-D / tau) over codewords: the TTA loss of one search, (B,).

    D is the squared L2 distance of each pixel vector (B, n, d) to each codeword (K, d).
    """
    if z_bnd.ndim != 3 or codebook_kd.ndim != 2 or z_bnd.shape[2] != codebook_kd.shape[1]:
        raise ValueError(
            f"expected (B, n, d) and (K, d), got {tuple(z_bnd.shape)} and {tuple(codebook_kd.shape)}"
        )
    dtype = torch.promote_types(torch.promote_types(z_bnd.dtype, codebook_kd.dtype), torch.float32)
    with torch.autocast(z_bnd.device.type, enabled=False):  # float32 under autocast too (GEMMs, exp)
        out: Tensor = _QueryEntropy.apply(z_bnd.to(dtype), codebook_kd.to(dtype), 2.0 / tau)
    return out
