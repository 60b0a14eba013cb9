"""Band selection and region cropping with client-facing validation (the REST `bands=` and `region=`).

Both return views; `encode_cube*` makes them contiguous where the format needs it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from service.errors import InvalidInputError

_EPS_NM = 1e-6


def parse_band_range(text: str) -> tuple[float, float]:
    """`"450-650"` or `"450:650"` (nm, inclusive), or one wavelength `"550"`."""
    parts = text.replace(":", "-").split("-") if text.strip() else []
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or not all(math.isfinite(v) for v in values):
        raise InvalidInputError(
            f"bands={text!r} is not a wavelength range; accepted: LO-HI in nm (e.g. 450-650) or one "
            "wavelength (e.g. 550)",
            received=text,
        )
    return values[0], values[-1]


def parse_region(text: str) -> tuple[int, int, int, int]:
    """`"x,y,w,h"` in pixels (origin top-left)."""
    try:
        x, y, w, h = (int(p) for p in text.split(","))
    except ValueError:
        raise InvalidInputError(
            f"region={text!r} is not a region; accepted: x,y,w,h in whole pixels (e.g. 0,0,256,256)",
            received=text,
        ) from None
    return x, y, w, h


def select_bands(
    cube: np.ndarray, wavelengths_nm: Sequence[float], lo_nm: float, hi_nm: float
) -> tuple[np.ndarray, tuple[float, ...]]:
    """The bands of `cube` (H, W, C) whose wavelengths lie in [lo_nm, hi_nm], and those wavelengths."""
    if cube.ndim != 3 or cube.shape[2] != len(wavelengths_nm):
        raise ValueError(f"{len(wavelengths_nm)} wavelengths for a cube of shape {cube.shape}")
    if not (math.isfinite(lo_nm) and math.isfinite(hi_nm)) or lo_nm > hi_nm:
        raise InvalidInputError(
            f"band range {lo_nm:g}-{hi_nm:g} nm is empty; accepted: LO <= HI", received=[lo_nm, hi_nm]
        )
    keep = [i for i, w in enumerate(wavelengths_nm) if lo_nm - _EPS_NM <= w <= hi_nm + _EPS_NM]
    if not keep:
        raise InvalidInputError(
            f"no band lies in {lo_nm:g}-{hi_nm:g} nm; the model's {len(wavelengths_nm)} bands span "
            f"{min(wavelengths_nm):g}-{max(wavelengths_nm):g} nm",
            received=[lo_nm, hi_nm],
            available_nm=[float(w) for w in wavelengths_nm],
        )
    first, last = keep[0], keep[-1]
    if keep != list(range(first, last + 1)):
        raise ValueError("wavelengths must be sorted ascending")
    return cube[:, :, first : last + 1], tuple(float(w) for w in wavelengths_nm[first : last + 1])


def crop_region(image: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
    """`image[y:y+h, x:x+w]` of an (H, W, ...) array, when the region lies wholly inside it."""
    height, width = image.shape[:2]
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise InvalidInputError(
            f"region x={x}, y={y}, w={w}, h={h} does not lie inside the {width}x{height} image; "
            f"accepted: x >= 0, y >= 0, w >= 1, h >= 1, x+w <= {width}, y+h <= {height}",
            received=[x, y, w, h],
            width=width,
            height=height,
        )
    return image[y : y + h, x : x + w]
