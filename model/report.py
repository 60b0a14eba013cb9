"""A one-page PNG report of one reconstruction: what a person should look at, not read.

Top row: the input RGB with the sampled pixels numbered, predicted against true spectra at those
pixels, and the RMSE of every band. Below: a few bands side by side as ground truth, prediction
and absolute error. The metrics go in the title. Figures are built on `matplotlib.figure.Figure`
with an Agg canvas, so nothing touches pyplot's global state and no display is needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.gridspec import SubplotSpec
from matplotlib.lines import Line2D

from model.metrics import band_rmse

ArrayLike = torch.Tensor | np.ndarray

_METRIC_LABELS = {"mrae": "MRAE", "mrae_001": "MRAE≥0.01", "rmse": "RMSE", "psnr": "PSNR (dB)"}
_PIXEL_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:red")


def _numpy(x: ArrayLike) -> np.ndarray:
    return torch.as_tensor(x).detach().to(device="cpu", dtype=torch.float64).numpy()


def display_rgb(rgb_chw: np.ndarray, gamma: float = 2.2) -> np.ndarray:
    """An (H, W, 3) image for display: exposed so the 99.5th percentile is white, then gamma-encoded.

    Pass `gamma=1.0` for RGB that is already display-encoded (such as the ARAD-1K JPEGs).
    """
    white = max(float(np.percentile(rgb_chw, 99.5)), 1e-6)
    return np.clip(rgb_chw / white, 0.0, 1.0).transpose(1, 2, 0) ** (1.0 / gamma)


def sample_pixels(gt_chw: np.ndarray, pred_chw: np.ndarray, count: int = 6) -> list[tuple[int, int]]:
    """Deterministic (row, col) pixels to plot spectra at.

    `count - 1` pixels at evenly spread quantiles of the true brightness (mean over bands, ties
    broken by position), so dark and bright materials both show, then the pixel with the largest
    spectral error, last.
    """
    if count < 2:
        raise ValueError(f"count must be at least 2, got {count}")
    w = gt_chw.shape[2]
    brightness = gt_chw.mean(axis=0).ravel()
    order = np.argsort(brightness, kind="stable")
    quantiles = (np.arange(count - 1) + 0.5) / (count - 1)
    flat = [int(order[int(q * (order.size - 1))]) for q in quantiles]
    flat.append(int(np.argmax(((pred_chw - gt_chw) ** 2).sum(axis=0))))
    return [(i // w, i % w) for i in flat]


def mosaic_bands(bands: int, count: int = 4) -> list[int]:
    """`count` band indices evenly spread inside the spectrum (the two ends left out)."""
    count = min(count, bands)
    return sorted({round(float(i)) for i in np.linspace(0, bands - 1, count + 2)[1:-1]})


def _format_title(title: str, metrics: Mapping[str, float]) -> str:
    parts = [f"{_METRIC_LABELS.get(key, key)} {value:.4g}" for key, value in metrics.items()]
    return f"{title}\n{'   '.join(parts)}" if parts else title


def _plot_rgb(ax: Axes, rgb: np.ndarray, pixels: Sequence[tuple[int, int]], gamma: float) -> None:
    ax.imshow(display_rgb(rgb, gamma), interpolation="nearest")
    for number, (row, col) in enumerate(pixels, start=1):
        colour = _PIXEL_COLOURS[(number - 1) % len(_PIXEL_COLOURS)]
        ax.scatter([col], [row], s=60, facecolors="none", edgecolors=colour, linewidths=2)
        ax.annotate(
            str(number),
            (col, row),
            xytext=(5, 5),
            textcoords="offset points",
            color=colour,
            fontsize=10,
            fontweight="bold",
        )
    ax.set_title("input RGB (numbered: sampled pixels)")
    ax.set_axis_off()


def _plot_spectra(
    ax: Axes,
    gt: np.ndarray,
    pred: np.ndarray,
    pixels: Sequence[tuple[int, int]],
    wavelengths: np.ndarray,
) -> None:
    for number, (row, col) in enumerate(pixels, start=1):
        colour = _PIXEL_COLOURS[(number - 1) % len(_PIXEL_COLOURS)]
        label = f"{number} (worst)" if number == len(pixels) else str(number)
        ax.plot(wavelengths, gt[:, row, col], color=colour, linewidth=1.8, label=label)
        ax.plot(wavelengths, pred[:, row, col], color=colour, linewidth=1.4, linestyle="--")
    handles, _ = ax.get_legend_handles_labels()
    handles += [
        Line2D([], [], color="black", linewidth=1.8, label="ground truth"),
        Line2D([], [], color="black", linewidth=1.4, linestyle="--", label="prediction"),
    ]
    ax.legend(handles=handles, fontsize=7, ncol=2, loc="best")
    ax.set(title="spectra at the sampled pixels", xlabel="wavelength (nm)", ylabel="reflectance")
    ax.grid(alpha=0.3)


def _plot_band_rmse(ax: Axes, rmse_c: np.ndarray, wavelengths: np.ndarray, shown: Sequence[int]) -> None:
    for band in shown:
        ax.axvline(wavelengths[band], color="0.8", linewidth=1, zorder=0)
    ax.plot(wavelengths, rmse_c, marker="o", markersize=3, color="tab:red")
    ax.set(title="RMSE per band (grey: bands shown below)", xlabel="wavelength (nm)", ylabel="RMSE")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)


def _plot_mosaic(
    fig: Figure, grid: SubplotSpec, gt: np.ndarray, pred: np.ndarray, wavelengths: np.ndarray
) -> None:
    """Rows ground truth / prediction / |error| of a few bands; one error scale for all bands."""
    shown = mosaic_bands(gt.shape[0])
    error = np.abs(pred - gt)
    error_max = max(float(np.percentile(error[shown], 99.5)), 1e-6)
    # A last, narrow column holds the error colour bar so the three image rows stay aligned.
    cells = grid.subgridspec(3, len(shown) + 1, width_ratios=(*([1.0] * len(shown)), 0.05))
    axes = cells.subplots(squeeze=False)
    for column, band in enumerate(shown):
        white = max(float(np.percentile(gt[band], 99.5)), 1e-6)
        axes[0, column].imshow(gt[band], cmap="gray", vmin=0, vmax=white)
        axes[1, column].imshow(pred[band], cmap="gray", vmin=0, vmax=white)
        error_image = axes[2, column].imshow(error[band], cmap="inferno", vmin=0, vmax=error_max)
        axes[0, column].set_title(f"{wavelengths[band]:g} nm")
    for row, name in enumerate(("ground truth", "prediction", "|error|")):
        axes[row, 0].set_ylabel(name)
        for ax in axes[row, :-1]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, -1].set_axis_off()
    axes[1, -1].set_axis_off()
    fig.colorbar(error_image, cax=axes[2, -1], label="absolute error")


def write_report(
    path_png: str | Path,
    rgb: ArrayLike,
    gt: ArrayLike,
    pred: ArrayLike,
    wavelengths_nm: Sequence[float],
    title: str,
    metrics: Mapping[str, float],
    *,
    rgb_gamma: float = 2.2,
    dpi: int = 100,
) -> Path:
    """Render the report of one image pair to `path_png` (parent folders created) and return the path.

    `rgb` is (3, H, W), `gt` and `pred` are (C, H, W) with one wavelength per band; the prediction
    is clamped to [0, 1] as the metrics do. `rgb_gamma` is the display gamma applied to the RGB
    (1.0 for already display-encoded input).
    """
    rgb_np, gt_np = _numpy(rgb), _numpy(gt)
    pred_np = np.clip(_numpy(pred), 0.0, 1.0)
    wavelengths = np.asarray(wavelengths_nm, dtype=np.float64)
    if rgb_np.ndim != 3 or rgb_np.shape[0] != 3:
        raise ValueError(f"expected an RGB image (3, H, W), got {rgb_np.shape}")
    if gt_np.ndim != 3 or gt_np.shape != pred_np.shape or gt_np.shape[1:] != rgb_np.shape[1:]:
        raise ValueError(f"shapes disagree: rgb {rgb_np.shape}, gt {gt_np.shape}, pred {pred_np.shape}")
    if wavelengths.shape != (gt_np.shape[0],):
        raise ValueError(f"{wavelengths.size} wavelengths for {gt_np.shape[0]} bands")

    pixels = sample_pixels(gt_np, pred_np)
    fig = Figure(figsize=(15, 10), layout="constrained")
    FigureCanvasAgg(fig)
    outer = fig.add_gridspec(2, 1, height_ratios=(1.0, 1.1))
    top = outer[0].subgridspec(1, 3, width_ratios=(1.0, 1.3, 1.0)).subplots(squeeze=False)[0]
    _plot_rgb(top[0], rgb_np, pixels, rgb_gamma)
    _plot_spectra(top[1], gt_np, pred_np, pixels, wavelengths)
    _plot_band_rmse(top[2], band_rmse(pred_np, gt_np).numpy(), wavelengths, mosaic_bands(gt_np.shape[0]))
    _plot_mosaic(fig, outer[1], gt_np, pred_np, wavelengths)
    fig.suptitle(_format_title(title, metrics), fontsize=13)

    path = Path(path_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
