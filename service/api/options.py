"""The options of `POST /reconstruct`, parsed and checked before the body is read, so a bad option
costs neither a decode nor a forward pass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from fastapi import Header, Query

from service.api.deps import SettingsDep
from service.codecs import (
    Color,
    Compression,
    CubeDtype,
    OutputFormat,
    crop_region,
    negotiate_output_format,
    parse_band_range,
    parse_region,
    select_bands,
)
from service.core import SESSION_ID
from service.errors import InvalidInputError

_COMPRESSIONS: dict[str, Compression | None] = {"none": None, "zlib": "zlib", "zstd": "zstd", "lzw": "lzw"}


@dataclass(frozen=True)
class ReconstructOptions:
    fmt: OutputFormat
    dtype: CubeDtype = "float32"
    color: Color = "linear"
    session_id: str | None = None
    tta_steps: int | None = None
    band_range: tuple[float, float] | None = None
    region: tuple[int, int, int, int] | None = None  # x, y, w, h
    compression: Compression | None = None
    timeout_s: float | None = None

    def check_frame(self, rgb: np.ndarray, wavelengths_nm: tuple[float, ...]) -> None:
        """Region and band range against the decoded frame and the model, before inference."""
        if self.region is not None:
            crop_region(rgb, *self.region)
        if self.band_range is not None:
            select_bands(np.empty((0, 0, len(wavelengths_nm)), np.float32), wavelengths_nm, *self.band_range)

    def subset(
        self, cube: np.ndarray, wavelengths_nm: tuple[float, ...]
    ) -> tuple[np.ndarray, tuple[float, ...]]:
        """The requested bands and region of `cube` (views, no copies)."""
        if self.band_range is not None:
            cube, wavelengths_nm = select_bands(cube, wavelengths_nm, *self.band_range)
        if self.region is not None:
            cube = crop_region(cube, *self.region)
        return cube, wavelengths_nm


def check_session_id(session_id: str | None) -> str | None:
    if session_id is not None and not SESSION_ID.fullmatch(session_id):
        raise InvalidInputError(
            f"session id {session_id[:140]!r} is invalid; accepted: 1-128 characters of A-Z a-z 0-9 . _ : -",
            received=session_id[:140],
        )
    return session_id


def pick_session_id(query: str | None, header: str | None) -> str | None:
    """`session_id=` or `X-Session-ID` (both only when they agree), validated."""
    if query is not None and header is not None and query != header:
        raise InvalidInputError(
            f"session_id={query!r} and X-Session-ID: {header!r} disagree; send one of them"
        )
    return check_session_id(query if query is not None else header)


def check_tta_steps(steps: int | None, max_steps: int) -> int | None:
    if steps is not None and not 0 <= steps <= max_steps:
        raise InvalidInputError(
            f"tta_steps={steps} is out of range; accepted: 0..{max_steps}", received=steps, maximum=max_steps
        )
    return steps


def reconstruct_options(
    settings: SettingsDep,
    fmt: Annotated[
        str | None, Query(alias="format", description="tiff (OME-TIFF) or npy; overrides Accept")
    ] = None,
    accept: Annotated[str | None, Header(description="image/tiff or application/x-npy")] = None,
    session_id: Annotated[
        str | None, Query(description="adapt within this session (or X-Session-ID)", examples=["cam-1"])
    ] = None,
    x_session_id: Annotated[str | None, Header(description="same as session_id")] = None,
    tta_steps: Annotated[
        int | None,
        Query(description="adaptation steps: one-shot without a session, per frame with one"),
    ] = None,
    dtype: Annotated[Literal["float32", "float16"], Query(description="float16: npy only")] = "float32",
    color: Annotated[
        Literal["linear", "srgb"],
        Query(description="input contract: linear camera RGB, or sRGB-encoded (gamma undone first)"),
    ] = "linear",
    bands: Annotated[
        str | None,
        Query(description="wavelength range in nm, LO-HI inclusive, or one band", examples=["450-650"]),
    ] = None,
    region: Annotated[
        str | None, Query(description="x,y,w,h in pixels of the cube to return", examples=["0,0,256,256"])
    ] = None,
    compression: Annotated[
        Literal["none", "zlib", "zstd", "lzw"] | None, Query(description="TIFF compression (tiff only)")
    ] = None,
    timeout_s: Annotated[
        float | None, Query(gt=0, description="client deadline in s, capped by the server's")
    ] = None,
) -> ReconstructOptions:
    out_fmt = negotiate_output_format(fmt, accept)
    if dtype != "float32" and out_fmt != "npy":
        raise InvalidInputError(f"dtype={dtype} is available with format=npy only; TIFF cubes are float32")
    codec = _COMPRESSIONS[compression or "none"]
    if codec is not None and out_fmt != "tiff":
        raise InvalidInputError(f"compression={compression} applies to format=tiff only")
    return ReconstructOptions(
        fmt=out_fmt,
        dtype=dtype,
        color=color,
        session_id=pick_session_id(session_id, x_session_id),
        tta_steps=check_tta_steps(tta_steps, settings.max_tta_steps),
        band_range=parse_band_range(bands) if bands is not None else None,
        region=parse_region(region) if region is not None else None,
        compression=codec,
        timeout_s=timeout_s,
    )
