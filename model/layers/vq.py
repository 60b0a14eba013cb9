"""Nearest-codeword search, straight-through quantization and codebook usage.

The search is the hot path of GANet (MODEL.md, "Where inference time goes"): distances are one
GEMM against precomputed codeword norms, in pixel chunks that stay in cache, and the feature map
is never transposed: codebook (K, d) @ features (d, n) keeps the channel-first layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

try:  # faiss is a required dependency; the torch fallback keeps other platforms working
    import faiss
except ImportError:  # pragma: no cover
    faiss = None  # type: ignore[assignment]


def pixels(z_bdhw: Tensor) -> Tensor:
    """(B, d, H, W) -> (B, H*W, d): a view when the map is channels-last, as GANet keeps it."""
    B, d = z_bdhw.shape[:2]
    return z_bdhw.permute(0, 2, 3, 1).reshape(B, -1, d)


def nearest_codeword(z_bnd: Tensor, codebook_kd: Tensor, chunk: int = 4096) -> Tensor:
    """Index of the nearest codeword (squared L2) of every pixel vector: (B, n, d) -> (B, n) int64.

    On CPU float32 this is faiss' exact flat search (BLAS distances with a fused, blocked argmin:
    about 2x the chunked torch path below, measured on 65,536 x 1,024 x 32); elsewhere, or without
    faiss, chunked `addmm` + `argmax` in torch. Both are exact; ties may break differently.
    """
    B, n, d = z_bnd.shape
    if faiss is not None and z_bnd.device.type == "cpu" and z_bnd.dtype == torch.float32:
        rows = z_bnd.detach().reshape(B * n, d).contiguous().numpy()
        cb = codebook_kd.detach().contiguous().numpy()
        _, idx = faiss.knn(rows, cb, 1)
        return torch.from_numpy(idx).view(B, n).clamp_(min=0)  # faiss gives -1 for non-finite rows
    return nearest_codeword_torch(z_bnd, codebook_kd, chunk)


def nearest_codeword_torch(z_bnd: Tensor, codebook_kd: Tensor, chunk: int = 4096) -> Tensor:
    """The torch path of `nearest_codeword` (any device and dtype)."""
    B, n, d = z_bnd.shape
    with torch.no_grad():
        cb = codebook_kd.detach()
        neg_half_norm_k = -0.5 * (cb * cb).sum(1)
        rows = z_bnd.detach().reshape(B * n, d)
        idx = torch.empty(B * n, dtype=torch.long, device=z_bnd.device)
        for s in range(0, B * n, chunk):
            # argmin ||c||^2 - 2 c.z  ==  argmax c.z - ||c||^2 / 2   (||z||^2 is constant per pixel)
            torch.argmax(torch.addmm(neg_half_norm_k, rows[s : s + chunk], cb.t()), 1, out=idx[s : s + chunk])
    return idx.view(B, n)


def gather_codewords(idx_bn: Tensor, codebook_kd: Tensor, height: int, width: int) -> Tensor:
    """Codewords for an index map, as a (B, d, H, W) view in channels-last memory (no transpose copy)."""
    q_bnd = F.embedding(idx_bn, codebook_kd)
    return q_bnd.view(idx_bn.shape[0], height, width, -1).permute(0, 3, 1, 2)


def straight_through(z: Tensor, q: Tensor) -> Tensor:
    """Forward value `q`, gradient of the identity to `z`."""
    return z + (q - z).detach()


@dataclass(frozen=True)
class CodebookUsage:
    """How much of a codebook was used: perplexity (effective number of codes) and never-used codes."""

    perplexity: float
    dead: int
    size: int

    @staticmethod
    def from_counts(counts: Tensor) -> CodebookUsage:
        p = counts.double() / counts.sum().clamp(min=1).double()
        nz = p[p > 0]
        return CodebookUsage(
            math.exp(-(nz * nz.log()).sum().item()), int((counts == 0).sum()), counts.numel()
        )

    @staticmethod
    def from_indices(idx: Tensor, size: int) -> CodebookUsage:
        return CodebookUsage.from_counts(torch.bincount(idx.detach().flatten().cpu(), minlength=size))


@dataclass
class UsageCounter:
    """Running code counts over many batches (e.g. to find codewords never used on the training data)."""

    size: int
    counts: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))

    def update(self, idx: Tensor) -> None:
        c = torch.bincount(idx.detach().flatten().cpu(), minlength=self.size)
        self.counts = c if self.counts.numel() == 0 else self.counts + c

    def usage(self) -> CodebookUsage:
        return CodebookUsage.from_counts(self.counts if self.counts.numel() else torch.zeros(self.size))
