"""Raw tensor input (the gRPC `RawTensor`): an (H, W, 3) array as little-endian bytes, shape and dtype.

Everything a header can tell is checked before the bytes are looked at (dtype, rank, dimensions
against the limits, channels, exact byte count); the pixels then follow the same rules as decoded
files (`pixels.to_unit_rgb`): integers scaled by their width, floats finite and within [0, 1],
`color="srgb"` undone. CPU-bound for large frames: call it off the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from service.codecs.limits import DEFAULT_LIMITS, DecodeLimits, check_body_size, check_dimensions
from service.codecs.pixels import COLORS, RawImage, require_rgb, to_unit_rgb
from service.errors import InvalidInputError

LABEL = "raw tensor"
# dtype name -> (little-endian numpy dtype, bit depth the integers are scaled by)
RAW_DTYPES: dict[str, tuple[np.dtype, int]] = {
    "uint8": (np.dtype("<u1"), 8),
    "uint16": (np.dtype("<u2"), 16),
    "float16": (np.dtype("<f2"), 16),
    "float32": (np.dtype("<f4"), 32),
}


def decode_raw(
    shape: Sequence[int],
    dtype: str,
    data: bytes,
    *,
    color: str = "linear",
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> np.ndarray:
    """The contract's float32 (H, W, 3) linear RGB in [0, 1] from a raw tensor (a new array).

    Raises InvalidInputError (422 / INVALID_ARGUMENT) or PayloadTooLargeError (413) with messages
    saying what was received and what is accepted.
    """
    if color not in COLORS:
        raise InvalidInputError(f"unknown color {color!r}; accepted: {', '.join(COLORS)}", received=color)
    if dtype not in RAW_DTYPES:
        raise InvalidInputError(
            f"{LABEL} dtype {dtype!r} is not accepted; accepted: {', '.join(RAW_DTYPES)} (little-endian)",
            received=dtype,
            accepted=list(RAW_DTYPES),
        )
    dims = [int(d) for d in shape]
    if len(dims) != 3:
        raise InvalidInputError(f"{LABEL} has shape {tuple(dims)}; accepted: (H, W, 3)", received_shape=dims)
    height, width, channels = dims
    check_dimensions(height, width, limits, LABEL)  # before the bytes: the shape says what was meant
    if data:  # no data is reported against the shape below, not as an empty upload
        check_body_size(len(data), limits)
    if channels != 3:
        if height == 3 and channels > 3:
            raise InvalidInputError(
                f"{LABEL} has shape {tuple(dims)}, channels first; accepted: channels last (H, W, 3)",
                received_shape=dims,
            )
        require_rgb(channels, LABEL)
    np_dtype, bits = RAW_DTYPES[dtype]
    expected = height * width * 3 * np_dtype.itemsize
    if len(data) != expected:
        raise InvalidInputError(
            f"{LABEL} of shape {tuple(dims)} and dtype {dtype} needs {expected} bytes, got {len(data)}",
            received_bytes=len(data),
            expected_bytes=expected,
        )
    pixels = np.frombuffer(data, dtype=np_dtype).reshape(height, width, 3)
    return to_unit_rgb(RawImage(pixels, bits), color, LABEL)
