"""Fixture files made with the real codecs (Pillow, libpng via imagecodecs, tifffile, numpy)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image

Encoder = Callable[..., bytes]


def _png(arr: np.ndarray, **kwargs: Any) -> bytes:
    """uint16 through libpng (Pillow cannot write 16-bit RGB), everything else through Pillow."""
    if arr.dtype == np.uint16 and arr.ndim == 3:
        return bytes(imagecodecs.png_encode(arr))
    out = io.BytesIO()
    Image.fromarray(arr).save(out, "PNG", **kwargs)
    return out.getvalue()


def _jpeg(arr: np.ndarray, **kwargs: Any) -> bytes:
    out = io.BytesIO()
    Image.fromarray(arr).save(out, "JPEG", **{"quality": 95, **kwargs})
    return out.getvalue()


def _tiff(arr: np.ndarray, **kwargs: Any) -> bytes:
    out = io.BytesIO()
    tifffile.imwrite(out, arr, **kwargs)
    return out.getvalue()


def _npy(arr: np.ndarray, **kwargs: Any) -> bytes:
    out = io.BytesIO()
    np.save(out, arr, **kwargs)
    return out.getvalue()


@pytest.fixture(scope="session")
def png() -> Encoder:
    return _png


@pytest.fixture(scope="session")
def jpeg() -> Encoder:
    return _jpeg


@pytest.fixture(scope="session")
def tiff() -> Encoder:
    return _tiff


@pytest.fixture(scope="session")
def npy() -> Encoder:
    return _npy


@pytest.fixture(scope="session")
def rgb8() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (12, 17, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def rgb16() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 65536, (12, 17, 3), dtype=np.uint16)
