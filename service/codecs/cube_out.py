"""Encoding a reconstructed cube (H, W, C) for the wire: plain `.npy` or OME-TIFF.

NPY is the array and nothing else (wavelengths travel in response headers): a version-1.0 header
followed by the little-endian data, returned as chunks that reference the array instead of
copying it. TIFF is OME-TIFF, planar (C, Y, X) with one page per band: each OME Channel carries
its wavelength (Name "450 nm", EmissionWavelength 450, unit nm), which Fiji/Bio-Formats, napari
and `tifffile` all read; caller metadata and the wavelength list go in an OME MapAnnotation.
ImageJ hyperstacks were the alternative, but they have no wavelength field (labels only) and no
place for key/value metadata. OME has no half-float pixel type, so float16 is NPY-only.
"""

from __future__ import annotations

import io
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import tifffile

from service.codecs.formats import OUTPUT_FORMATS, OutputFormat, file_extension, media_type
from service.errors import InvalidInputError

CubeDtype = Literal["float32", "float16"]
Compression = Literal["zlib", "zstd", "lzw"]
CUBE_DTYPES: tuple[CubeDtype, ...] = get_args(CubeDtype)
COMPRESSIONS: tuple[Compression, ...] = get_args(Compression)  # "zlib" is TIFF's Adobe Deflate
WAVELENGTH_KEY = "wavelength_nm"  # MapAnnotation key holding the comma-separated band centres


@dataclass(frozen=True)
class EncodedCube:
    """An encoded cube as bytes-like chunks to send in order, with its media type and extension.

    NPY chunks are the header and a flat byte view of the (cast) array, so nothing is copied; the
    view keeps its array alive. Callers must not modify the cube until the chunks are sent.
    """

    chunks: tuple[bytes | memoryview, ...]
    media_type: str
    extension: str

    @property
    def nbytes(self) -> int:
        return sum(memoryview(c).nbytes for c in self.chunks)

    def tobytes(self) -> bytes:
        return b"".join(self.chunks)


def _check_options(fmt: str, dtype: str, compression: str | None) -> None:
    """Client-chosen options: a bad one is the client's 422."""
    if fmt not in OUTPUT_FORMATS:
        raise InvalidInputError(f"unknown output format {fmt!r}; accepted: {', '.join(OUTPUT_FORMATS)}")
    if dtype not in CUBE_DTYPES:
        raise InvalidInputError(f"unknown output dtype {dtype!r}; accepted: {', '.join(CUBE_DTYPES)}")
    if fmt == "tiff" and dtype != "float32":
        raise InvalidInputError(
            f"dtype={dtype} is available with format=npy only: OME-TIFF (and Fiji) have no half-float "
            "pixel type; accepted for TIFF: float32"
        )
    if compression is not None and (fmt != "tiff" or compression not in COMPRESSIONS):
        raise InvalidInputError(
            f"compression {compression!r} is not available for format={fmt}; accepted: "
            f"{', '.join(COMPRESSIONS)} with format=tiff, none with format=npy"
        )


def _check_cube(cube: np.ndarray, wavelengths_nm: Sequence[float]) -> None:
    """The server's own data: a mismatch here is a bug (ValueError -> 500), not the client's."""
    if cube.ndim != 3 or min(cube.shape) < 1 or cube.dtype.kind != "f":
        raise ValueError(f"cube must be a non-empty float (H, W, C) array, got {cube.dtype} {cube.shape}")
    if len(wavelengths_nm) != cube.shape[2]:
        raise ValueError(f"{len(wavelengths_nm)} wavelengths for {cube.shape[2]} bands")
    if not all(math.isfinite(w) and w > 0 for w in wavelengths_nm):
        raise ValueError(f"wavelengths must be finite and positive, got {list(wavelengths_nm)}")


def _npy_chunks(cube: np.ndarray, dtype: CubeDtype) -> tuple[bytes | memoryview, ...]:
    arr = np.ascontiguousarray(cube, dtype=np.dtype(dtype).newbyteorder("<"))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(arr))
    return header.getvalue(), arr.reshape(-1).view(np.uint8).data


def _tiff_chunks(
    cube: np.ndarray,
    wavelengths_nm: Sequence[float],
    compression: Compression | None,
    metadata: Mapping[str, str],
) -> tuple[bytes | memoryview, ...]:
    bands_cyx = np.ascontiguousarray(np.moveaxis(cube, -1, 0), dtype=np.float32)
    nbands = len(wavelengths_nm)
    annotation = {str(k): str(v) for k, v in metadata.items()}
    annotation[WAVELENGTH_KEY] = ",".join(f"{float(w):g}" for w in wavelengths_nm)
    ome = {
        "axes": "CYX",
        "UUID": f"urn:uuid:{uuid.uuid4()}",  # tifffile's default uuid1 would embed the host's MAC
        "Creator": "mcga",
        "Name": "hyperspectral cube",
        "Channel": {
            "Name": [f"{float(w):g} nm" for w in wavelengths_nm],
            "EmissionWavelength": [float(w) for w in wavelengths_nm],
            "EmissionWavelengthUnit": ["nm"] * nbands,
        },
        "MapAnnotation": annotation,
    }
    out = io.BytesIO()
    tifffile.imwrite(
        out,
        bands_cyx,
        ome=True,
        photometric="minisblack",
        compression=compression,
        metadata=ome,
        maxworkers=1,
    )
    return (out.getbuffer(),)


def encode_cube_chunks(
    cube: np.ndarray,
    wavelengths_nm: Sequence[float],
    *,
    fmt: OutputFormat,
    dtype: CubeDtype = "float32",
    compression: Compression | None = None,
    metadata: Mapping[str, str] | None = None,
) -> EncodedCube:
    """Encode `cube` (H, W, C) for sending without an extra copy (see EncodedCube).

    `metadata` (model version, input contract, ...) is stored in the TIFF; NPY has no place for it.
    Raises InvalidInputError for options a client chose badly, ValueError for a malformed cube.
    """
    _check_options(fmt, dtype, compression)
    _check_cube(cube, wavelengths_nm)
    if fmt == "npy":
        chunks = _npy_chunks(cube, dtype)
    else:
        chunks = _tiff_chunks(cube, wavelengths_nm, compression, metadata or {})
    return EncodedCube(chunks=chunks, media_type=media_type(fmt), extension=file_extension(fmt))


def encode_cube(
    cube: np.ndarray,
    wavelengths_nm: Sequence[float],
    *,
    fmt: OutputFormat,
    dtype: CubeDtype = "float32",
    compression: Compression | None = None,
    metadata: Mapping[str, str] | None = None,
) -> bytes:
    """`encode_cube_chunks` joined into one bytes object (one copy; for gRPC `bytes` fields)."""
    return encode_cube_chunks(
        cube, wavelengths_nm, fmt=fmt, dtype=dtype, compression=compression, metadata=metadata
    ).tobytes()
