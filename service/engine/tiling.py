"""Tiled inference for frames above the tile size: bounded memory, same output shape.

Tiles of `tile` pixels overlap by at least `overlap`; the last tile of a row or column is aligned to
the image edge. Each tile's output is weighted by a ramp that rises across the overlaps it shares
with neighbours (flat at the image border) and the weighted sum is normalised, so seams fade instead
of stepping. GANet's GA operations normalise per image, so a tile differs from the same region of
the whole-frame output; the overlap blending keeps that difference smooth (see the tiling tests for
the measured error).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

_ROWS = 256


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering [0, size) with tiles of `tile` overlapping by >= `overlap`."""
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    starts.append(size - tile)
    return starts


def _ramp(length: int, start: int, size: int, overlap: int) -> np.ndarray:
    w = np.ones(length, dtype=np.float32)
    if overlap <= 0:
        return w
    ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
    if start > 0:
        w[:overlap] = np.minimum(w[:overlap], ramp)
    if start + length < size:
        w[-overlap:] = np.minimum(w[-overlap:], ramp[::-1])
    return w


@dataclass(frozen=True)
class Tile:
    y: int
    x: int
    h: int
    w: int


def plan_tiles(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    th, tw = min(tile, height), min(tile, width)
    return [
        Tile(y, x, th, tw)
        for y in tile_starts(height, tile, overlap)
        for x in tile_starts(width, tile, overlap)
    ]


def _chunks(tiles: list[Tile], n: int) -> Iterator[list[Tile]]:
    for i in range(0, len(tiles), n):
        yield tiles[i : i + n]


def run_tiled(
    rgb_hwc: np.ndarray,
    fn: Callable[[np.ndarray], np.ndarray],
    *,
    bands: int,
    tile: int,
    overlap: int,
    tile_batch: int,
) -> np.ndarray:
    """Blend `fn` over overlapping tiles: `fn` maps (n, h, w, 3) tiles to (n, h, w, bands) outputs.

    Peak memory beyond the (H, W, bands) output is one batch of tiles and an (H, W) weight map.
    """
    H, W, _ = rgb_hwc.shape
    out = np.zeros((H, W, bands), dtype=np.float32)
    weight = np.zeros((H, W, 1), dtype=np.float32)
    for group in _chunks(plan_tiles(H, W, tile, overlap), tile_batch):
        batch = np.stack([rgb_hwc[t.y : t.y + t.h, t.x : t.x + t.w] for t in group])
        pred = fn(batch)
        if pred.shape != (*batch.shape[:3], bands):
            raise ValueError(f"tile function gave {pred.shape} for tiles {batch.shape}")
        for t, p in zip(group, pred, strict=True):
            w = _ramp(t.h, t.y, H, overlap)[:, None, None] * _ramp(t.w, t.x, W, overlap)[None, :, None]
            out[t.y : t.y + t.h, t.x : t.x + t.w] += p * w
            weight[t.y : t.y + t.h, t.x : t.x + t.w] += w
    for y in range(0, H, _ROWS):  # in place, in row chunks: no second full-size temporary
        out[y : y + _ROWS] /= weight[y : y + _ROWS]
    return out


def centre_tile(rgb_hwc: np.ndarray, tile: int) -> np.ndarray:
    """The central `tile` x `tile` crop (clipped to the frame): where a tiled frame adapts."""
    H, W, _ = rgb_hwc.shape
    th, tw = min(tile, H), min(tile, W)
    y, x = (H - th) // 2, (W - tw) // 2
    return rgb_hwc[y : y + th, x : x + tw]
