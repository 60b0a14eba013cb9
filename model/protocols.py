"""The paper's robustness test protocols: spatially mixed patches and shifted brightness.

"Mixed" destroys the spatial context while keeping every pixel's RGB/HSI pairing, so it tests how
much a model relies on context. "Brightness" changes the RGB exposure by a gamma curve while the
HSI target stays fixed, so it tests sensitivity to a mismatch between RGB and spectra.
"""

from __future__ import annotations

import math

import numpy as np
import torch

ArrayLike = torch.Tensor | np.ndarray

_GAMMA_BOUNDS = (1.0 / 64.0, 64.0)
_BISECTION_STEPS = 100
_BISECTION_RTOL = 1e-9


def _to_patches(x_chw: torch.Tensor, patch: int) -> torch.Tensor:
    """(C, nh*P, nw*P) -> (nh*nw, C, P, P), patches in row-major order."""
    c, h, w = x_chw.shape
    nh, nw = h // patch, w // patch
    return x_chw.reshape(c, nh, patch, nw, patch).permute(1, 3, 0, 2, 4).reshape(nh * nw, c, patch, patch)


def _from_patches(p_nc: torch.Tensor, nh: int, nw: int) -> torch.Tensor:
    """(nh*nw, C, P, P) -> (C, nh*P, nw*P), the inverse of `_to_patches`."""
    _, c, patch, _ = p_nc.shape
    return p_nc.reshape(nh, nw, c, patch, patch).permute(2, 0, 3, 1, 4).reshape(c, nh * patch, nw * patch)


def mix_patches(
    rgb: ArrayLike,
    hsi: ArrayLike,
    patch: int = 16,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffle the P x P patches of an RGB (3, H, W) and its HSI (C, H, W) by one permutation.

    Both images are first cropped to the top-left (H // P * P, W // P * P) region: the trailing
    rows and columns that do not fill a whole patch are dropped, so the outputs may be smaller
    than the inputs. The same random permutation (drawn from `generator`) moves the patches of
    both, so every pixel keeps its RGB/HSI pairing.
    """
    rgb_t, hsi_t = torch.as_tensor(rgb), torch.as_tensor(hsi)
    if rgb_t.ndim != 3 or hsi_t.ndim != 3 or rgb_t.shape[1:] != hsi_t.shape[1:]:
        raise ValueError(
            f"expected (3, H, W) and (C, H, W) of one size, got {tuple(rgb_t.shape)} and {tuple(hsi_t.shape)}"
        )
    if patch < 1:
        raise ValueError(f"patch must be positive, got {patch}")
    nh, nw = rgb_t.shape[1] // patch, rgb_t.shape[2] // patch
    if nh == 0 or nw == 0:
        raise ValueError(f"image {tuple(rgb_t.shape[1:])} is smaller than one {patch}x{patch} patch")
    perm = torch.randperm(nh * nw, generator=generator)

    def shuffle(x_chw: torch.Tensor) -> torch.Tensor:
        cropped = x_chw[:, : nh * patch, : nw * patch]
        return _from_patches(_to_patches(cropped, patch)[perm], nh, nw)

    return shuffle(rgb_t), shuffle(hsi_t)


def brightness_gamma(rgb: ArrayLike, factor: float) -> float:
    """The gamma for which mean(rgb ** gamma) == factor * mean(rgb), found by bisection.

    `rgb` is clipped to [0, 1] first. On [0, 1] the mean of rgb ** gamma falls monotonically as
    gamma grows, so bisection (in log gamma, within [1/64, 64]) converges; a factor whose target
    lies outside what that range reaches raises ValueError.
    """
    if factor <= 0:
        raise ValueError(f"factor must be positive, got {factor}")
    x = torch.as_tensor(rgb).detach().to(device="cpu", dtype=torch.float64).clamp(0.0, 1.0)
    base = float(x.mean())
    if base == 0.0:
        raise ValueError("a black image has no brightness to scale")
    target = factor * base

    def mean_at(log_gamma: float) -> float:
        return float(x.pow(math.exp(log_gamma)).mean())

    lo, hi = math.log(_GAMMA_BOUNDS[0]), math.log(_GAMMA_BOUNDS[1])
    if not mean_at(hi) <= target <= mean_at(lo):
        raise ValueError(f"brightness factor {factor} is out of reach for this image")
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        value = mean_at(mid)
        if abs(value - target) <= _BISECTION_RTOL * target:
            return math.exp(mid)
        if value > target:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


def brightness_shift(rgb: ArrayLike, factor: float) -> torch.Tensor:
    """The RGB gamma-corrected so that its mean brightness is `factor` times the original.

    The paper's brightness protocol uses factors 1.1 and 0.9 with the HSI unchanged. The result
    is clipped to [0, 1] and keeps the input's floating dtype (float32 for other inputs).
    """
    rgb_t = torch.as_tensor(rgb)
    dtype = rgb_t.dtype if rgb_t.is_floating_point() else torch.float32
    gamma = brightness_gamma(rgb_t, factor)
    x = rgb_t.detach().to(dtype=torch.float64).clamp(0.0, 1.0)
    return x.pow(gamma).to(dtype=dtype)
