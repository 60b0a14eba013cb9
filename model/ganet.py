"""Stage 2: GANet, the Grayscale-Aware U-Net that maps RGB into the frozen MoC space (MODEL.md).

Level j (0 = full resolution) has d·2^j channels and talks to the MoC scale with factor 2^j. Per
level, exactly three nearest-codeword searches: at the encoder entry (its assignment drives the
encoder GQA blocks), on the encoder output (its codewords become the skip `Q_j`; its assignment
drives the decoder GQA blocks) and on the decoder output (the latent handed to the frozen
Algorithm-2 decoder, "gradually replaced" by its codewords during training).

`Q_j = P_j^-1(q)` only ever feeds the decoder's 1x1 fuse conv; two 1x1 convs with nothing between
them are one linear map of the same rank, so `P_j^-1` is folded into the fuse conv's codeword slice
(d input channels) instead of being computed at full resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.config import GANetConfig
from model.layers.blocks import GABlock, SplitPointwise, conv3x3
from model.layers.consistency import CameraConsistency
from model.layers.entropy import query_entropy
from model.layers.multiscale import MultiScaleDecoder, shape_gain
from model.layers.vq import UsageCounter, gather_codewords, nearest_codeword, pixels, straight_through
from model.padding import pad_to_multiple


@dataclass
class GANetOutput:
    hsi: Tensor
    entropy: Tensor | None  # (B,) mean codebook-query entropy over every search, when asked for
    # (B, H, W) squared input-vs-rendered difference (channel mean) the camera projection corrected
    # (eval mode)
    input_residual: Tensor | None = None


class GANet(nn.Module):
    replace_alpha: Tensor

    def __init__(self, cfg: GANetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, S = cfg.latent_dim, cfg.scales
        ch = [d * 2**j for j in range(S)]
        full = cfg.attention == "full"

        def blocks(n: int, c: int) -> nn.ModuleList:
            return nn.ModuleList(
                GABlock(
                    c,
                    cfg.head_dim,
                    cfg.top_t,
                    full,
                    cfg.full_attention_max_pixels,
                    cfg.ffn_expansion,
                    cfg.ga_eps,
                )
                for _ in range(n)
            )

        self.stem = conv3x3(cfg.in_channels, d)
        self.down = nn.ModuleList(nn.Conv2d(ch[j - 1], ch[j], 4, stride=2, padding=1) for j in range(1, S))
        self.up = nn.ModuleList(nn.ConvTranspose2d(ch[j + 1], ch[j], 2, stride=2) for j in range(S - 1))
        self.to_code = nn.ModuleList(nn.Conv2d(c, d, 1) for c in ch)
        self.enc = nn.ModuleList(blocks(n, c) for n, c in zip(cfg.encoder_blocks, ch, strict=True))
        self.fuse = nn.ModuleList(
            SplitPointwise((c, d) if j == S - 1 else (c, c, d), c) for j, c in enumerate(ch)
        )
        self.dec = nn.ModuleList(blocks(n, c) for n, c in zip(cfg.decoder_blocks, ch, strict=True))
        # Frozen stage-1 parts: the MoC (per scale, coarsest first), Algorithm 2 and the output conv.
        self.moc = nn.ParameterList(
            nn.Parameter(torch.randn(k, d), requires_grad=False) for k in cfg.moc_sizes
        )
        self.decoder = MultiScaleDecoder(d, S).requires_grad_(False)
        self.out_conv = conv3x3(d, cfg.out_bands).requires_grad_(False)
        self.register_buffer("replace_alpha", torch.tensor(1.0))
        self.consistency = CameraConsistency(cfg.out_bands) if cfg.camera_consistency else None
        # Per level, counts of every search's chosen codes while set (see model/prune.py).
        self.usage: list[UsageCounter] | None = None

    def frozen_modules(self) -> list[nn.Module]:
        return [self.moc, self.decoder, self.out_conv]

    def set_replacement(self, alpha: float) -> None:
        """Gradual replacement weight `a` in [0, 1] (1 at inference)."""
        self.replace_alpha.fill_(min(1.0, max(0.0, alpha)))

    def _code(self, level: int, x: Tensor) -> tuple[Tensor, Tensor]:
        """P_j into codebook space: (the searched vector, l2-normalised when the MoC is; the raw one)."""
        raw: Tensor = self.to_code[level](x)
        return (F.normalize(raw, dim=1, eps=1e-6) if self.cfg.normalized else raw), raw

    def _latent(self, z: Tensor, q: Tensor, raw: Tensor) -> Tensor:
        """What stage 1's decoder reads: the codeword, straight-through, with the norm under shape-gain."""
        return shape_gain(raw, straight_through(z, q), self.cfg.shape_gain and self.cfg.normalized)

    def _count(self, level: int, idx: Tensor) -> None:
        if self.usage is not None:
            self.usage[level].update(idx)

    def codebook(self, level: int) -> Tensor:
        return self.moc[self.cfg.scales - 1 - level]

    def _search(self, level: int, z_bdhw: Tensor, codebook: Tensor, entropies: list[Tensor] | None) -> Tensor:
        """Nearest codewords of a map, (B, H*W); when adapting, also appends the search's query entropy."""
        z_bnd = pixels(z_bdhw)
        idx = nearest_codeword(z_bnd, codebook, self.cfg.search_chunk)
        self._count(level, idx)
        if entropies is not None:
            step = max(1, -(-z_bnd.shape[1] // self.cfg.entropy_max_pixels))
            entropies.append(query_entropy(z_bnd[:, ::step], codebook, self.cfg.tta_tau))
        return idx

    def _replace(self, z: Tensor, q: Tensor, raw: Tensor) -> Tensor:
        """Gradual replacement: (1 - a) latent + a Quantize(latent), straight-through; the codewords
        alone at a = 1 (inference), where the unquantized latent is never built."""
        zq = self._latent(z, q, raw)
        a = self.replace_alpha
        return zq if bool(a >= 1) else (1 - a) * self._latent(z, z, raw) + a * zq

    def forward(
        self, rgb_bchw: Tensor, with_entropy: bool = False, response: Tensor | None = None
    ) -> GANetOutput:
        """RGB (B, 3, H, W) -> HSI (B, out_bands, H, W) for any H, W; optionally the TTA entropy.

        With camera consistency, eval mode projects with the stored camera; `response` (B, bands, 3),
        the camera of each sample, projects with those instead (training, where cameras vary).
        """
        x, (H, W) = pad_to_multiple(rgb_bchw, self.cfg.multiple)
        S = self.cfg.scales
        entropies: list[Tensor] | None = [] if with_entropy else None
        feats = self.stem(x.contiguous(memory_format=torch.channels_last))
        skips: list[tuple[Tensor, Tensor, Tensor]] = []
        for j in range(S):
            if j:
                feats = self.down[j - 1](feats)
            cb = self.codebook(j)
            z, _ = self._code(j, feats)
            idx_in = self._search(j, z, cb, entropies)
            for blk in cast(nn.ModuleList, self.enc[j]):
                feats = blk(feats, idx_in, cb.shape[0])
            z, raw = self._code(j, feats)
            idx_q = self._search(j, z, cb, entropies)
            skips.append((feats, self._latent(z, gather_codewords(idx_q, cb, *z.shape[-2:]), raw), idx_q))

        latents: list[Tensor] = [x] * S
        dec: Tensor | None = None
        for j in reversed(range(S)):
            cb = self.codebook(j)
            e, qj, idx_q = skips[j]
            dec = self.fuse[j](e, qj) if dec is None else self.fuse[j](self.up[j](dec), e, qj)
            for blk in cast(nn.ModuleList, self.dec[j]):
                dec = blk(dec, idx_q, cb.shape[0])
            z, raw = self._code(j, dec)
            idx_out = self._search(j, z, cb, entropies)
            latents[S - 1 - j] = self._replace(z, gather_codewords(idx_out, cb, *z.shape[-2:]), raw)
        hsi = self.out_conv(self.decoder(latents))[..., :H, :W]
        residual = None
        if self.consistency is not None and response is not None:
            hsi = self.consistency(hsi, rgb_bchw, response)
        elif self.consistency is not None and not self.training:
            hsi, residual = self.consistency.correct(hsi, rgb_bchw)
        entropy = torch.stack(entropies, dim=0).mean(0) if entropies is not None else None
        return GANetOutput(hsi, entropy, residual)

    @torch.no_grad()
    def load_stage1(self, moc: list[Tensor], decoder: nn.Module, out_conv: nn.Module) -> None:
        """Copy the MoC (per scale, coarsest first), stage 1's decoder and output conv; all stay frozen."""
        if [m.shape[0] for m in moc] != list(self.cfg.moc_sizes):
            raise ValueError(f"MoC sizes {[m.shape[0] for m in moc]} != config {self.cfg.moc_sizes}")
        for dst, src in zip(self.moc, moc, strict=True):
            dst.copy_(src)
        self.decoder.load_state_dict(decoder.state_dict())
        self.out_conv.load_state_dict(out_conv.state_dict())
