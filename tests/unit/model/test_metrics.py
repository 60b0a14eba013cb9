"""Hand-computed cases for the NTIRE 2022 metrics: values, masks, clamping and averaging."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from model.metrics import band_rmse, image_metrics, mean_metrics, mrae, mrae_001, psnr, rmse


def test_uniform_offset_matches_hand_computed_values() -> None:
    gt = torch.full((3, 4, 5), 0.5)
    pred = torch.full((3, 4, 5), 0.55)
    result = image_metrics(pred, gt)
    assert result["mrae"] == pytest.approx(0.1)
    assert result["mrae_001"] == pytest.approx(0.1)
    assert result["rmse"] == pytest.approx(0.05)
    assert result["psnr"] == pytest.approx(26.0206, abs=1e-4)
    assert set(result) == {"mrae", "mrae_001", "rmse", "psnr"}


def test_numpy_input_gives_the_same_values_as_torch() -> None:
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.05, 1.0, (4, 6, 7))
    pred = rng.uniform(0.0, 1.0, (4, 6, 7))
    assert image_metrics(pred, gt) == image_metrics(torch.as_tensor(pred), torch.as_tensor(gt))


def test_mrae_skips_zero_ground_truth_and_mrae_001_skips_values_below_001() -> None:
    gt = torch.tensor([0.0, 0.005, 0.5, 1.0]).reshape(1, 1, 4)
    pred = torch.tensor([0.3, 0.006, 0.6, 0.9]).reshape(1, 1, 4)
    # gt > 0: |0.001|/0.005 = 0.2, 0.1/0.5 = 0.2, 0.1/1 = 0.1 -> mean 0.5/3.
    assert mrae(pred, gt) == pytest.approx(0.5 / 3)
    # gt >= 0.01: 0.2 and 0.1 -> mean 0.15.
    assert mrae_001(pred, gt) == pytest.approx(0.15)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mrae_001_includes_the_boundary_value_in_the_ground_truths_precision(dtype: torch.dtype) -> None:
    gt = torch.tensor([0.01, 0.009], dtype=dtype).reshape(1, 1, 2)
    pred = torch.tensor([0.02, 0.5], dtype=dtype).reshape(1, 1, 2)
    assert mrae_001(pred, gt) == pytest.approx(1.0)
    assert image_metrics(pred, gt)["mrae_001"] == pytest.approx(1.0)


def test_prediction_is_clamped_to_unit_range() -> None:
    gt = torch.tensor([0.0, 1.0, 0.5]).reshape(1, 1, 3)
    pred = torch.tensor([-0.4, 1.7, 0.5]).reshape(1, 1, 3)
    assert rmse(pred, gt) == 0.0
    assert psnr(pred, gt) == math.inf
    assert mrae(pred, gt) == 0.0


def test_empty_mask_gives_nan() -> None:
    gt = torch.zeros(2, 2, 2)
    assert math.isnan(mrae(gt + 0.1, gt))
    assert math.isnan(mrae_001(gt + 0.1, gt))


def test_band_rmse_is_per_band() -> None:
    gt = torch.full((3, 2, 2), 0.5)
    pred = gt.clone()
    pred[1] += 0.1
    pred[2, 0, 0] += 0.2
    expected = torch.tensor([0.0, 0.1, math.sqrt(0.04 / 4)], dtype=torch.float64)
    torch.testing.assert_close(band_rmse(pred, gt), expected)


def test_mismatched_or_non_chw_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="shape"):
        rmse(torch.zeros(3, 4, 4), torch.zeros(3, 4, 5))
    with pytest.raises(ValueError, match="shape"):
        rmse(torch.zeros(4, 4), torch.zeros(4, 4))


def test_mean_metrics_averages_per_image_not_per_pixel() -> None:
    small_bad = image_metrics(torch.full((1, 1, 1), 0.6), torch.full((1, 1, 1), 0.5))
    large_good = image_metrics(torch.full((1, 10, 10), 0.5), torch.full((1, 10, 10), 0.5))
    result = mean_metrics([small_bad, large_good])
    assert result["mrae"] == pytest.approx(0.1)
    assert result["rmse"] == pytest.approx(0.05)


def test_mean_metrics_rejects_empty_or_inconsistent_input() -> None:
    with pytest.raises(ValueError, match="no images"):
        mean_metrics([])
    with pytest.raises(ValueError, match="keys"):
        mean_metrics([{"mrae": 0.1}, {"rmse": 0.1}])
