"""From a decoded pixel array to the model's input: float32 (H, W, 3) linear RGB in [0, 1].

The input contract: scale by the bit depth the file declares, never per image, so exposure and
brightness changes reach the model and TTA; `color="srgb"` then undoes the sRGB transfer curve
(IEC 61966-2-1) for ordinary camera JPEGs. Float inputs must already lie in [0, 1]: values within
FLOAT_TOLERANCE outside it are clipped (rounding), anything further is rejected rather than
rescaled, since a silent rescale would be exactly the per-image normalisation the model never saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from service.errors import InvalidInputError

Color = Literal["linear", "srgb"]
COLORS: tuple[Color, ...] = ("linear", "srgb")
FLOAT_TOLERANCE = 1e-3
_TAKE_BLOCK = 1 << 20  # elements per LUT gather

_CHANNELS = {
    1: "1 channel (greyscale)",
    2: "2 channels (greyscale + alpha)",
    4: "4 channels (RGBA, or CMYK)",
}


@dataclass(frozen=True)
class RawImage:
    """A decoder's output before scaling: (H, W, 3) uint8/uint16/float, and the declared bit depth."""

    pixels: np.ndarray
    bit_depth: int


def require_rgb(channels: int, fmt: str, what: str | None = None) -> None:
    """Exactly 3 channels. Alpha is rejected, not dropped: the colour under a transparent pixel is
    undefined (often black or premultiplied), and a silent drop would hand the model made-up RGB."""
    if channels == 3:
        return
    received = what or _CHANNELS.get(channels, f"{channels} channels")
    raise InvalidInputError(
        f"{fmt} image has {received}; exactly 3 channels (RGB) are accepted. Convert greyscale to "
        "RGB, and remove (or flatten) an alpha channel yourself: it is never dropped silently",
        received_channels=channels,
        accepted_channels=3,
    )


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Inverse sRGB transfer function (IEC 61966-2-1) of values in [0, 1], as a new float32 array."""
    x = np.asarray(x, dtype=np.float32)
    out = x + np.float32(0.055)
    out /= np.float32(1.055)
    np.power(out, np.float32(2.4), out=out)
    np.divide(x, np.float32(12.92), out=out, where=x <= np.float32(0.04045))
    return out


@lru_cache(maxsize=8)
def _lut(container_bits: int, bit_depth: int, color: Color) -> np.ndarray:
    """Code value -> float32 contract value, computed in float64 once per (depth, colour)."""
    x = np.arange(1 << container_bits, dtype=np.float64) / float((1 << bit_depth) - 1)
    if color == "srgb":
        x = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    lut = x.astype(np.float32)
    lut.flags.writeable = False
    return lut


def _integers_to_unit(pixels: np.ndarray, bit_depth: int, color: Color, fmt: str) -> np.ndarray:
    container_bits = pixels.dtype.itemsize * 8
    if bit_depth < container_bits and pixels.size and int(pixels.max()) >= 1 << bit_depth:
        raise InvalidInputError(
            f"{fmt} declares {bit_depth}-bit samples but holds values up to {int(pixels.max())}; "
            f"accepted: values 0..{(1 << bit_depth) - 1}",
            bit_depth=bit_depth,
        )
    lut = _lut(container_bits, bit_depth, color)
    out = np.empty(pixels.shape, dtype=np.float32)
    rows = max(1, _TAKE_BLOCK // max(1, pixels.shape[1] * pixels.shape[2]))
    for r in range(0, pixels.shape[0], rows):  # blocks bound numpy's intp index temporaries
        np.take(lut, pixels[r : r + rows], out=out[r : r + rows], mode="clip")
    return out


def _floats_to_unit(pixels: np.ndarray, color: Color, fmt: str) -> np.ndarray:
    if pixels.size:
        lo, hi = float(pixels.min()), float(pixels.max())  # NaN propagates, inf shows
        if np.isnan(lo) or np.isnan(hi) or np.isinf(lo) or np.isinf(hi):
            bad = "NaN" if np.isnan(lo) or np.isnan(hi) else "infinite values"
            raise InvalidInputError(
                f"{fmt} float data contains {bad}; accepted: finite values in [0, 1]", received=bad
            )
        if lo < -FLOAT_TOLERANCE or hi > 1.0 + FLOAT_TOLERANCE:
            raise InvalidInputError(
                f"{fmt} float data ranges over [{lo:.6g}, {hi:.6g}]; accepted: linear camera RGB in "
                "[0, 1] (divide by your sensor's white level; float inputs are never rescaled)",
                received_min=lo,
                received_max=hi,
            )
    out = np.array(pixels, dtype=np.float32, order="C")
    np.clip(out, 0.0, 1.0, out=out)
    return srgb_to_linear(out) if color == "srgb" else out


def to_unit_rgb(raw: RawImage, color: Color, fmt: str) -> np.ndarray:
    """The contract's float32 (H, W, 3) C-contiguous array in [0, 1] (a new array, never a view)."""
    pixels = raw.pixels
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise InvalidInputError(f"{fmt} decoded to shape {pixels.shape}; accepted: (H, W, 3)")
    if pixels.dtype.kind == "u":
        out = _integers_to_unit(pixels, raw.bit_depth, color, fmt)
    elif pixels.dtype.kind == "f":
        out = _floats_to_unit(pixels, color, fmt)
    else:
        raise InvalidInputError(f"{fmt} sample type {pixels.dtype} is not accepted")
    return np.ascontiguousarray(out)
