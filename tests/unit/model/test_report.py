"""The evaluation report renders a readable PNG and validates its inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from model.config import CAVE_WAVELENGTHS
from model.metrics import image_metrics
from model.report import mosaic_bands, sample_pixels, write_report


def _pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(31, 24, 32, generator=g)
    pred = gt + 0.05 * torch.randn(gt.shape, generator=g)
    rgb = torch.stack([gt[20:].mean(0), gt[10:20].mean(0), gt[:10].mean(0)])
    return rgb, gt, pred


def test_writes_a_png_of_sensible_size(tmp_path: Path) -> None:
    rgb, gt, pred = _pair()
    path = write_report(
        tmp_path / "nested" / "report.png", rgb, gt, pred, CAVE_WAVELENGTHS, "unit", image_metrics(pred, gt)
    )
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert 800 <= width <= 3000
    assert 600 <= height <= 2000


def test_accepts_numpy_arrays(tmp_path: Path) -> None:
    rgb, gt, pred = _pair(1)
    path = write_report(tmp_path / "r.png", rgb.numpy(), gt.numpy(), pred.numpy(), CAVE_WAVELENGTHS, "np", {})
    assert path.stat().st_size > 10_000


def test_pixel_sampling_is_deterministic_and_ends_with_the_worst_pixel() -> None:
    _, gt, pred = _pair(2)
    gt_np, pred_np = gt.double().numpy(), pred.double().numpy()
    pixels = sample_pixels(gt_np, pred_np)
    assert pixels == sample_pixels(gt_np, pred_np)
    assert len(pixels) == 6
    error = ((pred_np - gt_np) ** 2).sum(axis=0)
    assert error[pixels[-1]] == error.max()
    brightness = [gt_np[:, r, c].mean() for r, c in pixels[:-1]]
    assert brightness == sorted(brightness)


def test_mosaic_bands_are_inside_the_spectrum() -> None:
    assert mosaic_bands(31) == [6, 12, 18, 24]
    assert mosaic_bands(2) == [0, 1]


def test_rejects_mismatched_inputs(tmp_path: Path) -> None:
    rgb, gt, pred = _pair()
    with pytest.raises(ValueError, match="wavelengths"):
        write_report(tmp_path / "r.png", rgb, gt, pred, CAVE_WAVELENGTHS[:-1], "bad", {})
    with pytest.raises(ValueError, match="shapes"):
        write_report(tmp_path / "r.png", rgb, gt, pred[:, :-1], CAVE_WAVELENGTHS, "bad", {})
    assert not any(tmp_path.iterdir())
