"""Stage 1: one multi-scale VQ-VAE trunk over several HSI datasets, one codebook per dataset and scale.

Codewords and features are l2-normalised before every search (`normalized`, the default; Yu et
al. 2022, "Vector-quantized image modeling with improved VQGAN"): measured on CAVE, loss-trained
Euclidean codebooks let the encoder features collapse onto one code (perplexity 1.1, Charbonnier
0.098 after 1,500 steps) even with dead-code restarts, which this avoids. Distances stay squared
L2, on the unit sphere.

Per dataset: an input conv (its band count -> d), a codebook per scale and an output conv (d -> its
bands). Shared: the encoder body, Algorithm 1's `phi_i` and Algorithm 2's decoder, so every
codeword of every dataset means the same thing to the decoder (MODEL.md, "Mixture of Codebooks").
`forward` is the training path (band masking, losses); `reconstruct` is the inference path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.config import VQVAEConfig
from model.layers.blocks import ResBlock, conv3x3
from model.layers.multiscale import MultiScaleDecoder, Quantized, ResidualQuantizer
from model.losses import charbonnier, relative_l1
from model.padding import pad_to_multiple


@dataclass
class VQOutput:
    """Training outputs of one stage-1 forward."""

    recon: Tensor
    loss: Tensor
    recon_loss: Tensor
    codebook_loss: Tensor
    idx: list[Tensor]
    features: list[Tensor]  # f_i per scale (detached): candidates for re-initialising dead codes


class VQVAE(nn.Module):
    def __init__(self, cfg: VQVAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.latent_dim
        self.in_convs = nn.ModuleList(conv3x3(spec.bands, d) for spec in cfg.datasets)
        self.body = nn.Sequential(ResBlock(d), ResBlock(d))
        self.codebooks = nn.Parameter(torch.randn(len(cfg.datasets), cfg.scales, cfg.codebook_size, d))
        self.quantizer = ResidualQuantizer(d, cfg.scales, cfg.normalized, cfg.shape_gain)
        self.decoder = MultiScaleDecoder(d, cfg.scales)
        self.out_convs = nn.ModuleList(conv3x3(d, spec.bands) for spec in cfg.datasets)

    @property
    def multiple(self) -> int:
        return 2 ** (self.cfg.scales - 1)

    def mask_bands(self, x_bchw: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Zero a random half (`mask_ratio`) of the bands of each sample."""
        B, C = x_bchw.shape[:2]
        n_masked = round(C * self.cfg.mask_ratio)
        order = torch.rand(B, C, generator=generator, device=x_bchw.device).argsort(dim=1)
        keep = torch.ones(B, C, device=x_bchw.device, dtype=x_bchw.dtype)
        keep.scatter_(1, order[:, :n_masked], 0.0)
        return x_bchw * keep[:, :, None, None]

    def codebooks_of(self, dataset: int) -> list[Tensor]:
        cbs = F.normalize(self.codebooks[dataset], dim=-1) if self.cfg.normalized else self.codebooks[dataset]
        return list(cbs.unbind(0))

    def forward(
        self, x_bchw: Tensor, dataset: int, mask: bool = True, generator: torch.Generator | None = None
    ) -> VQOutput:
        """Training step: masked input -> Algorithm 1 -> Algorithm 2, with all stage-1 losses."""
        inp = self.mask_bands(x_bchw, generator) if mask else x_bchw
        z = self.body(self.in_convs[dataset](inp))
        qz = self.quantizer(z, self.codebooks_of(dataset))
        recon = self.out_convs[dataset](self.decoder(qz.z))
        recon_loss = (
            relative_l1(recon, x_bchw)
            if self.cfg.recon_loss == "relative"
            else charbonnier(recon, x_bchw, self.cfg.charbonnier_eps)
        )
        codebook_loss = recon_loss.new_zeros(())
        for f, q in zip(qz.f, qz.q, strict=True):
            codebook_loss = (
                codebook_loss + F.mse_loss(q, f.detach()) + self.cfg.commitment * F.mse_loss(f, q.detach())
            )
        features = [f.detach() for f in qz.f]
        return VQOutput(recon, recon_loss + codebook_loss, recon_loss, codebook_loss, qz.idx, features)

    @torch.no_grad()
    def quantize(self, x_bchw: Tensor, dataset: int) -> Quantized:
        """Inference: Algorithm 1 on an unmasked input of any H, W (padded to the scale multiple)."""
        padded, _ = pad_to_multiple(x_bchw, self.multiple)
        return self.quantizer(self.body(self.in_convs[dataset](padded)), self.codebooks_of(dataset))

    @torch.no_grad()
    def reconstruct(self, x_bchw: Tensor, dataset: int) -> Tensor:
        """Inference: HSI -> codes -> HSI for any H, W (padded to the scale multiple, cropped back)."""
        H, W = x_bchw.shape[-2:]
        return self.out_convs[dataset](self.decoder(self.quantize(x_bchw, dataset).z))[..., :H, :W]

    def moc(self) -> list[Tensor]:
        """Mixture of Codebooks: per scale (coarsest first), every dataset's codebook stacked, (n·K, d)."""
        n, S, K, d = self.codebooks.shape
        cbs = F.normalize(self.codebooks, dim=-1) if self.cfg.normalized else self.codebooks
        return [cbs[:, i].reshape(n * K, d).detach().clone() for i in range(S)]
