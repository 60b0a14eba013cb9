"""Size limits checked before any pixel data is decoded (decompression bombs, giant or empty frames)."""

from __future__ import annotations

from dataclasses import dataclass

from service.errors import InvalidInputError, PayloadTooLargeError


@dataclass(frozen=True)
class DecodeLimits:
    """Upper bounds on one input frame.

    `max_bytes` bounds the encoded body; `max_pixels` (H*W) and `max_side` bound the dimensions a
    header declares, checked before decoding so a small compressed file cannot claim gigabytes.
    The defaults admit a 4096x4096 float32 `.npy` (192 MiB); the app builds its own from settings.
    """

    max_bytes: int = 256 << 20
    max_pixels: int = 4096 * 4096
    max_side: int = 16384

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels", "max_side"):
            if getattr(self, name) < 1:
                raise ValueError(f"DecodeLimits.{name} must be >= 1, got {getattr(self, name)}")


DEFAULT_LIMITS = DecodeLimits()


def check_body_size(nbytes: int, limits: DecodeLimits) -> None:
    """Reject an empty body (422) or one above `max_bytes` (413)."""
    if nbytes == 0:
        raise InvalidInputError(
            "empty body: send one image (PNG, JPEG, TIFF) or an H×W×3 .npy array", received_bytes=0
        )
    if nbytes > limits.max_bytes:
        raise PayloadTooLargeError(
            f"body of {nbytes} bytes exceeds the limit of {limits.max_bytes} bytes",
            received_bytes=nbytes,
            max_bytes=limits.max_bytes,
        )


def check_dimensions(height: int, width: int, limits: DecodeLimits, fmt: str) -> None:
    """Reject degenerate (422) or oversized (413) dimensions, as declared by a header."""
    if height < 1 or width < 1:
        raise InvalidInputError(
            f"{fmt} declares {width}x{height} pixels (width x height); both sides must be at least 1",
            width=width,
            height=height,
        )
    if max(height, width) > limits.max_side or height * width > limits.max_pixels:
        raise PayloadTooLargeError(
            f"{fmt} declares {width}x{height} pixels (width x height); accepted: sides up to "
            f"{limits.max_side} and at most {limits.max_pixels} pixels in all",
            width=width,
            height=height,
            max_side=limits.max_side,
            max_pixels=limits.max_pixels,
        )
