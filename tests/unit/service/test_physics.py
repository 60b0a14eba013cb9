"""Re-projection: zero for a cube that renders to its input, the RMSE otherwise, any frame size."""

from __future__ import annotations

import numpy as np
import pytest

from service.engine.physics import CameraResponse


def camera() -> CameraResponse:
    return CameraResponse("cam", np.random.default_rng(0).random((31, 3)).astype(np.float32) / 10)


def test_consistent_cube_has_zero_error() -> None:
    cam = camera()
    cube = np.random.default_rng(1).random((300, 20, 31), dtype=np.float32)  # more rows than one chunk
    assert cam.reprojection_error(cube, cam.render(cube)) == pytest.approx(0.0, abs=1e-6)


def test_error_is_the_rmse_of_the_rendering() -> None:
    cam = camera()
    cube = np.random.default_rng(2).random((8, 9, 31), dtype=np.float32)
    rgb = cam.render(cube) + np.float32(0.05)  # a constant offset: RMSE is exactly the offset
    assert cam.reprojection_error(cube, rgb) == pytest.approx(0.05, rel=1e-4)


def test_metadata_is_validated() -> None:
    assert CameraResponse.from_metadata({"name": "x", "response": [[0.1, 0.2, 0.3]] * 31}).bands == 31
    with pytest.raises(ValueError):
        CameraResponse.from_metadata({"name": "x", "response": [[0.1, 0.2]] * 31})
    with pytest.raises(ValueError):
        CameraResponse.from_metadata(None)
