"""The formats the front ends speak: names, media types, file extensions, and output negotiation.

`.npy` has no registered media type; `application/x-npy` is the common informal one. Output TIFFs
are OME-TIFF, hence the `.ome.tif` extension that Fiji (Bio-Formats) and napari recognise.
"""

from __future__ import annotations

from typing import Literal, get_args

from service.codecs.errors import NotAcceptableError
from service.errors import InvalidInputError

InputFormat = Literal["png", "jpeg", "tiff", "npy"]
OutputFormat = Literal["tiff", "npy"]

INPUT_FORMATS: tuple[InputFormat, ...] = get_args(InputFormat)
OUTPUT_FORMATS: tuple[OutputFormat, ...] = get_args(OutputFormat)

INPUT_MEDIA_TYPES: dict[InputFormat, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "tiff": "image/tiff",
    "npy": "application/x-npy",
}
OUTPUT_MEDIA_TYPES: dict[OutputFormat, str] = {"tiff": "image/tiff", "npy": "application/x-npy"}
OUTPUT_EXTENSIONS: dict[OutputFormat, str] = {"tiff": ".ome.tif", "npy": ".npy"}

ACCEPTED_INPUTS = "PNG or TIFF (8/16-bit RGB), JPEG (8-bit RGB), float32 RGB TIFF, or an H×W×3 .npy array"

_FORMAT_ALIASES: dict[str, OutputFormat] = {"tiff": "tiff", "tif": "tiff", "ome-tiff": "tiff", "npy": "npy"}
_ACCEPT_TYPES: dict[str, OutputFormat] = {"image/tiff": "tiff", "application/x-npy": "npy"}


def media_type(fmt: OutputFormat) -> str:
    return OUTPUT_MEDIA_TYPES[fmt]


def file_extension(fmt: OutputFormat) -> str:
    return OUTPUT_EXTENSIONS[fmt]


def parse_output_format(name: str) -> OutputFormat:
    """A `format=` value (case-insensitive; `tif` and `ome-tiff` mean `tiff`)."""
    fmt = _FORMAT_ALIASES.get(name.strip().lower())
    if fmt is None:
        raise InvalidInputError(
            f"unknown output format {name!r}; accepted: {', '.join(OUTPUT_FORMATS)}",
            received=name,
            accepted=list(OUTPUT_FORMATS),
        )
    return fmt


def negotiate_output_format(
    requested: str | None, accept: str | None, default: OutputFormat = "tiff"
) -> OutputFormat:
    """Pick the output format: an explicit `format=` wins, then the Accept header (by q-value).

    A missing or empty Accept and `*/*` give `default`, `image/*` TIFF and `application/*` NPY; an
    Accept naming only other types is a 406.
    """
    if requested:
        return parse_output_format(requested)
    if not accept or not accept.strip():
        return default
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept.split(",")):
        kind, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if kind and q > 0:
            ranked.append((-q, position, kind.lower()))
    for _, _, kind in sorted(ranked):
        if kind in _ACCEPT_TYPES:
            return _ACCEPT_TYPES[kind]
        if kind == "image/*":
            return "tiff"
        if kind == "application/*":
            return "npy"
        if kind == "*/*":
            return default
    raise NotAcceptableError(
        f"none of the accepted media types ({accept}) can be produced; available: "
        + ", ".join(OUTPUT_MEDIA_TYPES.values()),
        received=accept,
        accepted=list(OUTPUT_MEDIA_TYPES.values()),
    )
