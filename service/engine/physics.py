"""The re-projection check: the predicted cube seen through the training camera, against the input.

A cube that explains the input renders back to it: `rgb_c = sum_band cube_band * response[band, c]`.
A growing error on a live stream means the camera (or its processing: gamma, white balance) no longer
matches the one the model was trained for, and it shows before users complain about the spectra.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_ROWS = 256  # rows per chunk: bounds the temporary to (rows, W, 3) whatever the frame size


class CameraResponse:
    """A camera's spectral response, (bands, 3), as stored in a checkpoint's metadata."""

    def __init__(self, name: str, response_b3: np.ndarray) -> None:
        if response_b3.ndim != 2 or response_b3.shape[1] != 3 or not np.isfinite(response_b3).all():
            raise ValueError(f"camera response must be a finite (bands, 3) array, got {response_b3.shape}")
        self.name = name
        self.response_b3 = response_b3.astype(np.float32)

    @property
    def bands(self) -> int:
        return int(self.response_b3.shape[0])

    @staticmethod
    def from_metadata(meta: Any) -> CameraResponse:
        if not isinstance(meta, dict) or "response" not in meta:
            raise ValueError("camera metadata needs a 'response' (bands x 3)")
        return CameraResponse(
            str(meta.get("name", "unknown")), np.asarray(meta["response"], dtype=np.float32)
        )

    def render(self, cube_hwc: np.ndarray) -> np.ndarray:
        """(H, W, bands) -> (H, W, 3)."""
        return np.asarray(cube_hwc @ self.response_b3, dtype=np.float32)

    def reprojection_error(self, cube_hwc: np.ndarray, rgb_hwc: np.ndarray) -> float:
        """RMSE over pixels and channels between `rgb_hwc` and the rendered cube, in input units."""
        if cube_hwc.shape[:2] != rgb_hwc.shape[:2] or cube_hwc.shape[2] != self.bands:
            raise ValueError(f"cube {cube_hwc.shape} does not match rgb {rgb_hwc.shape} / {self.bands} bands")
        total = 0.0
        for y in range(0, cube_hwc.shape[0], _ROWS):
            diff = self.render(cube_hwc[y : y + _ROWS]) - rgb_hwc[y : y + _ROWS]
            total += float(np.einsum("ijk,ijk->", diff, diff, dtype=np.float64))
        return float(np.sqrt(total / rgb_hwc.size))
