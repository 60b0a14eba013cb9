"""Wire <-> contracts for the gRPC edge: frames in, output options, cubes and model info out.

Pure functions on protobuf messages and numpy arrays; the CPU-bound ones (`decode_frame`,
`unary_response`, `frame_messages`) run off the event loop. Client mistakes raise `service.errors`
classes, translated to gRPC status codes once, in `status.py`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from service.codecs import (
    CUBE_DTYPES,
    Color,
    CubeDtype,
    DecodeLimits,
    crop_region,
    decode_image,
    select_bands,
)
from service.codecs.raw_in import decode_raw
from service.contracts import ModelInfo, ReconstructResult, TTAOutcome
from service.errors import InvalidInputError, PayloadTooLargeError
from service.grpc.gen.mcga.v1 import reconstruction_pb2 as pb
from service.settings import Settings

MESSAGE_OVERHEAD = 64 << 10  # room for everything in a response besides the cube's bytes
MIN_CHUNK_BYTES = 1 << 10

TTA_OUTCOMES: dict[TTAOutcome, pb.TTAOutcome] = {
    TTAOutcome.NONE: pb.TTA_OUTCOME_NONE,
    TTAOutcome.ADAPTED: pb.TTA_OUTCOME_ADAPTED,
    TTAOutcome.DROPPED: pb.TTA_OUTCOME_DROPPED,
    TTAOutcome.RESET: pb.TTA_OUTCOME_RESET,
    TTAOutcome.SKIPPED_STORE_UNAVAILABLE: pb.TTA_OUTCOME_SKIPPED_STORE_UNAVAILABLE,
    TTAOutcome.KEPT_LOCAL: pb.TTA_OUTCOME_KEPT_LOCAL,
    TTAOutcome.SKIPPED_CONFLICT: pb.TTA_OUTCOME_SKIPPED_CONFLICT,
}


@dataclass(frozen=True)
class OutputSpec:
    """Validated `OutputOptions`: what to send back of each cube."""

    dtype: CubeDtype = "float32"
    band_min_nm: float | None = None  # None: from the first band
    band_max_nm: float | None = None  # None: to the last band
    region: tuple[int, int, int, int] | None = None  # x, y, width, height
    chunk_bytes: int = 0  # 0: the server's default


def decode_limits(settings: Settings) -> DecodeLimits:
    return DecodeLimits(
        max_bytes=settings.max_body_bytes,
        max_pixels=settings.max_image_pixels,
        max_side=settings.max_image_side,
    )


def output_spec(options: pb.OutputOptions, wavelengths_nm: Sequence[float]) -> OutputSpec:
    """Check the options a client chose (the band range against the served model's bands)."""
    dtype = options.dtype or "float32"
    if dtype not in CUBE_DTYPES:
        raise InvalidInputError(
            f"unknown output dtype {dtype!r}; accepted: {', '.join(CUBE_DTYPES)}", received=dtype
        )
    lo = float(options.band_min_nm) or None
    hi = float(options.band_max_nm) or None
    for value in (lo, hi):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise InvalidInputError(f"band limits must be positive wavelengths in nm, got {value}")
    region = None
    if options.HasField("region"):
        r = options.region
        region = (r.x, r.y, r.width, r.height)
        if r.width < 1 or r.height < 1:
            raise InvalidInputError(f"region {region} is empty; accepted: width >= 1 and height >= 1")
    chunk = int(options.chunk_bytes)
    if 0 < chunk < MIN_CHUNK_BYTES:
        raise InvalidInputError(f"chunk_bytes={chunk} is below the minimum of {MIN_CHUNK_BYTES} (0: default)")
    spec = OutputSpec(dtype, lo, hi, region, chunk)
    if lo is not None or hi is not None:  # an empty range fails at once, not on every frame
        probe = np.zeros((1, 1, len(wavelengths_nm)), np.float32)
        select_bands(probe, wavelengths_nm, *_band_range(spec, wavelengths_nm))
    return spec


def _band_range(spec: OutputSpec, wavelengths_nm: Sequence[float]) -> tuple[float, float]:
    lo = spec.band_min_nm if spec.band_min_nm is not None else min(wavelengths_nm)
    hi = spec.band_max_nm if spec.band_max_nm is not None else max(wavelengths_nm)
    return lo, hi


def decode_frame(image: pb.Image, limits: DecodeLimits) -> np.ndarray:
    """An `Image` message -> float32 (H, W, 3) linear RGB in [0, 1]. CPU-bound."""
    color = cast(Color, image.color or "linear")  # decode_image rejects unknown names
    kind = image.WhichOneof("payload")
    if kind == "encoded":
        return decode_image(image.encoded, color=color, limits=limits).rgb
    if kind == "raw":
        raw = image.raw
        return decode_raw(raw.shape, raw.dtype, raw.data, color=color, limits=limits)
    raise InvalidInputError("the image has no payload; set `encoded` (PNG, JPEG, TIFF, .npy) or `raw`")


def shaped_cube(result: ReconstructResult, spec: OutputSpec) -> tuple[np.ndarray, tuple[float, ...]]:
    """The cube as asked for: region, band range, dtype; C-contiguous little-endian."""
    cube, wavelengths = result.cube, tuple(result.wavelengths_nm)
    if spec.region is not None:
        cube = crop_region(cube, *spec.region)
    if spec.band_min_nm is not None or spec.band_max_nm is not None:
        cube, wavelengths = select_bands(cube, wavelengths, *_band_range(spec, wavelengths))
    return np.ascontiguousarray(cube, dtype=np.dtype(spec.dtype).newbyteorder("<")), wavelengths


def tensor(cube: np.ndarray, *, with_data: bool = True) -> pb.RawTensor:
    return pb.RawTensor(
        shape=list(cube.shape), dtype=cube.dtype.name, data=cube.tobytes() if with_data else b""
    )


def response(
    result: ReconstructResult, cube: pb.RawTensor, wavelengths: Sequence[float]
) -> pb.ReconstructResponse:
    t = result.timings
    return pb.ReconstructResponse(
        cube=pb.Cube(tensor=cube, wavelengths_nm=list(wavelengths)),
        model_version=result.model_version,
        tta=TTA_OUTCOMES[result.tta],
        session_step=result.session_step or 0,
        entropy=result.entropy or 0.0,
        reprojection_error=result.reprojection_error or 0.0,
        tiled=result.tiled,
        timings=pb.Timings(
            queue_ms=t.queue_s * 1e3,
            inference_ms=t.inference_s * 1e3,
            tta_ms=t.tta_s * 1e3,
            total_ms=t.total_s * 1e3,
        ),
    )


def unary_response(
    result: ReconstructResult, spec: OutputSpec, max_message_bytes: int
) -> pb.ReconstructResponse:
    """The whole cube in one message, or PayloadTooLargeError (INVALID_ARGUMENT) saying what fits."""
    cube, wavelengths = shaped_cube(result, spec)
    if cube.nbytes + MESSAGE_OVERHEAD > max_message_bytes:
        raise PayloadTooLargeError(
            f"the {'x'.join(map(str, cube.shape))} {spec.dtype} cube takes {cube.nbytes} bytes, above the "
            f"{max_message_bytes}-byte message limit; ask for a region, a band range or float16, or use "
            "StreamReconstruct, which sends large cubes in chunks",
            cube_bytes=cube.nbytes,
            max_message_bytes=max_message_bytes,
        )
    return response(result, tensor(cube), wavelengths)


def chunk_size(spec: OutputSpec, settings: Settings) -> int:
    """Bytes per CubeChunk: the client's choice or the server's, always within the message limit."""
    return min(
        spec.chunk_bytes or settings.grpc_chunk_bytes, settings.grpc_max_message_bytes - MESSAGE_OVERHEAD
    )


def frame_messages(
    result: ReconstructResult, spec: OutputSpec, index: int, session_id: str, chunk_bytes: int
) -> list[pb.StreamResponse]:
    """A frame's answer: its FrameResult, preceded by CubeChunks when the cube exceeds `chunk_bytes`."""
    cube, wavelengths = shaped_cube(result, spec)
    out: list[pb.StreamResponse] = []
    if cube.nbytes > chunk_bytes:
        flat = cube.reshape(-1).view(np.uint8).data
        for offset in range(0, cube.nbytes, chunk_bytes):
            data = flat[offset : offset + chunk_bytes].tobytes()
            out.append(pb.StreamResponse(chunk=pb.CubeChunk(frame_index=index, offset=offset, data=data)))
        body = tensor(cube, with_data=False)
    else:
        body = tensor(cube)
    res = pb.FrameResult(
        frame_index=index, session_id=session_id, response=response(result, body, wavelengths)
    )
    out.append(pb.StreamResponse(result=res))
    return out


def model_info(info: ModelInfo) -> pb.ModelInfo:
    return pb.ModelInfo(
        name=info.name,
        version=info.version,
        bands=info.bands,
        wavelengths_nm=list(info.wavelengths_nm),
        scales=info.scales,
        parameters=info.parameters,
        camera=info.camera or "",
        device=info.device,
        dtype=info.dtype,
        multiple=info.multiple,
    )
