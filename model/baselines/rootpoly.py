"""Per-pixel root-polynomial regression from RGB to spectra: the classical floor for comparison.

After Finlayson, Mackiewicz and Hurlbert (2015), "Colour correction using root-polynomial
regression". Each feature is the d-th root of a degree-d monomial of (r, g, b), e.g. sqrt(r g) or
cbrt(r g^2), so every feature scales linearly with exposure: f(k rgb) = k f(rgb). A linear map of
such features (no constant term) therefore keeps that property, unlike a plain polynomial.
Degree 1 has 3 terms, degree 2 has 6 and degree 3 has 13. The map is fitted by ridge-regularised
least squares over every training pixel, accumulating the normal equations image by image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import product

import numpy as np
import torch

ArrayLike = torch.Tensor | np.ndarray


def root_poly_exponents(degree: int) -> torch.Tensor:
    """Channel exponents of each feature, shape (F, 3), float64, in a fixed order.

    Row (a, b, c) stands for the feature r^a g^b b^c with a + b + c = 1: for every degree
    d <= `degree`, the d-th roots of the degree-d monomials, duplicates (such as sqrt(r^2) = r)
    kept once, lower degrees first.
    """
    if degree < 1:
        raise ValueError(f"degree must be at least 1, got {degree}")
    seen: list[tuple[Fraction, Fraction, Fraction]] = []
    for d in range(1, degree + 1):
        powers = sorted((p for p in product(range(d + 1), repeat=3) if sum(p) == d), reverse=True)
        for p in powers:
            term = (Fraction(p[0], d), Fraction(p[1], d), Fraction(p[2], d))
            if term not in seen:
                seen.append(term)
    return torch.tensor([[float(e) for e in term] for term in seen], dtype=torch.float64)


def root_poly_features(rgb_n3: torch.Tensor, exponents_f3: torch.Tensor) -> torch.Tensor:
    """Features (N, F) of pixels (N, 3); negative inputs are clamped to 0 (their roots are undefined)."""
    x = rgb_n3.to(torch.float64).clamp_min(0.0)
    return x.unsqueeze(1).pow(exponents_f3.unsqueeze(0)).prod(dim=2)


def _pixels(rgb: ArrayLike) -> torch.Tensor:
    """A (3, H, W) image as (H*W, 3) float64 pixels."""
    rgb_t = torch.as_tensor(rgb).detach().to(device="cpu", dtype=torch.float64)
    if rgb_t.ndim != 3 or rgb_t.shape[0] != 3:
        raise ValueError(f"expected an RGB image (3, H, W), got {tuple(rgb_t.shape)}")
    return rgb_t.reshape(3, -1).T


@dataclass(frozen=True, eq=False)
class RootPolyRegression:
    """A fitted root-polynomial map: `weight` (F, C) takes the features of a pixel to C bands."""

    degree: int
    weight: torch.Tensor

    def __post_init__(self) -> None:
        features = root_poly_exponents(self.degree).shape[0]
        if self.weight.ndim != 2 or self.weight.shape[0] != features:
            raise ValueError(
                f"degree {self.degree} needs a ({features}, C) weight, got {tuple(self.weight.shape)}"
            )

    @property
    def bands(self) -> int:
        return int(self.weight.shape[1])

    @classmethod
    def fit(
        cls,
        rgb_list: Sequence[ArrayLike],
        hsi_list: Sequence[ArrayLike],
        degree: int = 2,
        ridge: float = 1e-6,
    ) -> RootPolyRegression:
        """Least squares over all pixels of all pairs: min_W mean ||F(rgb) W - hsi||^2 + ridge ||W||^2.

        The penalty acts on the per-pixel mean, so `ridge` means the same whatever the number
        of pixels; `ridge=0` gives the plain (minimum-norm) least-squares fit.
        """
        if len(rgb_list) != len(hsi_list) or not rgb_list:
            raise ValueError(
                f"need matching, non-empty lists, got {len(rgb_list)} RGB and {len(hsi_list)} HSI"
            )
        if ridge < 0:
            raise ValueError(f"ridge must be non-negative, got {ridge}")
        exponents = root_poly_exponents(degree)
        n_features = exponents.shape[0]
        gram = torch.zeros(n_features, n_features, dtype=torch.float64)
        cross: torch.Tensor | None = None
        count = 0
        for index, (rgb, hsi) in enumerate(zip(rgb_list, hsi_list)):
            hsi_t = torch.as_tensor(hsi).detach().to(device="cpu", dtype=torch.float64)
            rgb_t = torch.as_tensor(rgb)
            if hsi_t.ndim != 3 or hsi_t.shape[1:] != rgb_t.shape[1:]:
                raise ValueError(
                    f"pair {index}: RGB {tuple(rgb_t.shape)} and HSI {tuple(hsi_t.shape)} differ in size"
                )
            if cross is not None and hsi_t.shape[0] != cross.shape[1]:
                raise ValueError(f"pair {index}: {hsi_t.shape[0]} bands, earlier pairs had {cross.shape[1]}")
            feats = root_poly_features(_pixels(rgb_t), exponents)
            targets = hsi_t.reshape(hsi_t.shape[0], -1).T
            gram += feats.T @ feats
            cross = feats.T @ targets if cross is None else cross + feats.T @ targets
            count += feats.shape[0]
        assert cross is not None
        system = gram / count + ridge * torch.eye(n_features, dtype=torch.float64)
        weight = torch.linalg.lstsq(system, cross / count).solution
        return cls(degree=degree, weight=weight)

    def predict(self, rgb: ArrayLike) -> torch.Tensor:
        """Spectra (C, H, W) of an RGB image (3, H, W), unclamped (metrics clamp).

        The result has the input's floating dtype, or float32 for integer input.
        """
        rgb_t = torch.as_tensor(rgb)
        dtype = rgb_t.dtype if rgb_t.is_floating_point() else torch.float32
        _, h, w = rgb_t.shape
        feats = root_poly_features(_pixels(rgb_t), root_poly_exponents(self.degree))
        return (feats @ self.weight).T.reshape(self.bands, h, w).to(dtype)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Plain tensors only: safe for `torch.load(weights_only=True)` or `numpy.savez`."""
        return {"degree": torch.tensor(self.degree, dtype=torch.int64), "weight": self.weight.clone()}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, ArrayLike]) -> RootPolyRegression:
        """Rebuild a model from `state_dict()` output (tensors or numpy arrays)."""
        degree = torch.as_tensor(state["degree"])
        if degree.numel() != 1 or degree.is_floating_point():
            raise ValueError(f"degree must be one integer, got {degree}")
        weight = torch.as_tensor(state["weight"]).to(dtype=torch.float64).clone()
        return cls(degree=int(degree), weight=weight)
