"""Tiling: full coverage, exact blending for per-pixel maps, and GANet's seam error, measured.

GANet normalises per image (GA min-max and global pooling), so a tile's output differs from the
same region of the whole-frame output. The bound stated here, for a random tiny GANet on a smooth
test image with tile 64 and overlap 16: relative RMSE (RMSE / std of the untiled output) below 5%,
and overlap blending at least halves the error of hard-edged tiles.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from model.config import GANetConfig
from model.ganet import GANet
from service.engine.tiling import centre_tile, plan_tiles, run_tiled, tile_starts


@pytest.mark.parametrize(
    ("size", "tile", "overlap"), [(64, 64, 8), (65, 64, 8), (200, 64, 16), (1000, 512, 32)]
)
def test_tiles_cover_with_at_least_the_overlap(size: int, tile: int, overlap: int) -> None:
    starts = tile_starts(size, tile, overlap)
    assert starts[0] == 0 and starts[-1] + min(tile, size) == size
    for a, b in itertools.pairwise(starts):
        assert 0 < b - a <= tile - overlap


def test_blending_is_exact_for_a_per_pixel_map() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.random((150, 97, 3), dtype=np.float32)
    response = rng.random((3, 31), dtype=np.float32)
    out = run_tiled(rgb, lambda t: t @ response, bands=31, tile=40, overlap=8, tile_batch=3)
    np.testing.assert_allclose(out, rgb @ response, rtol=1e-5, atol=1e-6)


def test_small_frame_is_one_tile() -> None:
    assert len(plan_tiles(30, 40, 64, 8)) == 1
    assert centre_tile(np.zeros((100, 50, 3), np.float32), 64).shape == (64, 50, 3)


def smooth_image(height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width] / 32.0
    rgb = np.stack([0.5 + 0.3 * np.sin(xx + c) * np.cos(0.7 * yy + c) for c in range(3)], axis=-1)
    noise = np.random.default_rng(0).random(rgb.shape) * 0.05
    return (rgb + noise).astype(np.float32)


def test_ganet_tiles_match_the_whole_frame_within_the_stated_error() -> None:
    torch.manual_seed(0)
    cfg = GANetConfig(
        latent_dim=16, moc_sizes=(32, 32), encoder_blocks=(1, 1), decoder_blocks=(1, 1), top_t=8
    )
    net = GANet(cfg).eval()

    def forward(rgb_nhwc: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(rgb_nhwc).permute(0, 3, 1, 2)).hsi.permute(0, 2, 3, 1).numpy()

    rgb = smooth_image(96, 136)
    whole = forward(rgb[None])[0]
    blended = run_tiled(rgb, forward, bands=31, tile=64, overlap=16, tile_batch=4)
    hard = run_tiled(rgb, forward, bands=31, tile=64, overlap=0, tile_batch=4)
    assert blended.shape == hard.shape == whole.shape == (96, 136, 31)

    def rel_rmse(x: np.ndarray) -> float:
        return float(np.sqrt(((x - whole) ** 2).mean()) / whole.std())

    assert rel_rmse(blended) < 0.05
    assert rel_rmse(blended) < 0.5 * rel_rmse(hard)


def test_4k_frame_keeps_memory_bounded() -> None:
    """A 3840x2160 frame: same shape out, and beyond the output cube itself, peak memory is the
    weight map and one batch of tiles (measured with tracemalloc, which sees numpy's buffers)."""
    import tracemalloc

    H, W, tile, batch = 2160, 3840, 512, 4
    rgb = np.full((H, W, 3), 0.5, dtype=np.float32)
    response = np.full((3, 31), 0.1, dtype=np.float32)
    tracemalloc.start()
    try:
        out = run_tiled(rgb, lambda t: t @ response, bands=31, tile=tile, overlap=32, tile_batch=batch)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == (H, W, 31)
    np.testing.assert_allclose(out[::97, ::89], 0.15, rtol=1e-5)
    cube, weights = out.nbytes, H * W * 4
    tiles = batch * tile * tile * 4 * (3 + 2 * 31)  # inputs, outputs and one weighted temporary
    assert peak < cube + weights + tiles + (64 << 20)
