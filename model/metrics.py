"""NTIRE 2022 reconstruction metrics on one (C, H, W) cube, and their per-image average.

Definitions follow `shared/design/MODEL.md` ("Evaluation"): the prediction is clamped to [0, 1]
before every metric, each metric is computed per image and then averaged over images (as the
MST++ code does). Arithmetic runs in float64 so that averages over many pixels do not drift.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch

ArrayLike = torch.Tensor | np.ndarray

MRAE_FLOOR = 0.01
"""Ground-truth values below this carry no 8-bit RGB information; `mrae_001` ignores them."""


class _Prepared(NamedTuple):
    pred: torch.Tensor
    gt: torch.Tensor
    floor: float


def _prepare(pred: ArrayLike, gt: ArrayLike) -> _Prepared:
    """Both cubes as float64 (C, H, W) tensors, the prediction clamped to [0, 1].

    `floor` is `MRAE_FLOOR` rounded to the ground truth's own precision, so that a float32 value
    of 0.01 still counts as ">= 0.01" after the cast to float64.
    """
    gt_in = torch.as_tensor(gt).detach()
    pred_t = torch.as_tensor(pred).detach().to(device="cpu", dtype=torch.float64)
    gt_t = gt_in.to(device="cpu", dtype=torch.float64)
    if pred_t.ndim != 3 or pred_t.shape != gt_t.shape:
        raise ValueError(
            f"expected prediction and ground truth of one (C, H, W) shape, "
            f"got {tuple(pred_t.shape)} and {tuple(gt_t.shape)}"
        )
    dtype = gt_in.dtype if gt_in.is_floating_point() else torch.float64
    return _Prepared(pred_t.clamp(0.0, 1.0), gt_t, float(torch.tensor(MRAE_FLOOR, dtype=dtype)))


def _relative_error(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean |pred - gt| / gt over the masked values; NaN when the mask is empty."""
    if not bool(mask.any()):
        return math.nan
    return float(((pred[mask] - gt[mask]).abs() / gt[mask]).mean())


def _mse(pred: torch.Tensor, gt: torch.Tensor) -> float:
    return float((pred - gt).square().mean())


def _psnr(mse: float) -> float:
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def mrae(pred: ArrayLike, gt: ArrayLike) -> float:
    """Mean relative absolute error over values with gt > 0 (the NTIRE definition)."""
    p = _prepare(pred, gt)
    return _relative_error(p.pred, p.gt, p.gt > 0)


def mrae_001(pred: ArrayLike, gt: ArrayLike) -> float:
    """Mean relative absolute error over values with gt >= 0.01 (the primary CAVE figure)."""
    p = _prepare(pred, gt)
    return _relative_error(p.pred, p.gt, p.gt >= p.floor)


def rmse(pred: ArrayLike, gt: ArrayLike) -> float:
    """Root mean squared error over all values."""
    p = _prepare(pred, gt)
    return math.sqrt(_mse(p.pred, p.gt))


def psnr(pred: ArrayLike, gt: ArrayLike) -> float:
    """Peak signal-to-noise ratio 10 log10(1 / MSE) for data range 1; inf for a perfect match."""
    p = _prepare(pred, gt)
    return _psnr(_mse(p.pred, p.gt))


def band_rmse(pred: ArrayLike, gt: ArrayLike) -> torch.Tensor:
    """RMSE of each band, shape (C,), float64: where in the spectrum the error lives."""
    p = _prepare(pred, gt)
    return (p.pred - p.gt).square().mean(dim=(1, 2)).sqrt()


def image_metrics(pred: ArrayLike, gt: ArrayLike) -> dict[str, float]:
    """All scalar metrics of one image: keys `mrae`, `mrae_001`, `rmse`, `psnr`."""
    p = _prepare(pred, gt)
    mse = _mse(p.pred, p.gt)
    return {
        "mrae": _relative_error(p.pred, p.gt, p.gt > 0),
        "mrae_001": _relative_error(p.pred, p.gt, p.gt >= p.floor),
        "rmse": math.sqrt(mse),
        "psnr": _psnr(mse),
    }


def mean_metrics(per_image: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Average each metric over images (unweighted by image size, as the MST++ code does).

    Every image must report the same keys. A NaN (an image with no valid pixel for a metric)
    propagates on purpose rather than being skipped silently.
    """
    if not per_image:
        raise ValueError("no images to average")
    keys = list(per_image[0])
    for index, row in enumerate(per_image):
        if set(row) != set(keys):
            raise ValueError(f"image {index} reports keys {sorted(row)}, expected {sorted(keys)}")
    return {key: math.fsum(row[key] for row in per_image) / len(per_image) for key in keys}
