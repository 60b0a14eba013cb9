"""Arrays <-> `mcga.v1` messages for the gRPC clients, without I/O.

Frames go as `RawTensor`s when they are arrays (uint8, uint16, float16, float32; float64 is sent as
float32) and as `encoded` bytes otherwise. Answers come back as `FrameOutcome`s: a stream's
CubeChunks are put back together by `Reassembler` before the FrameResult they precede.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from service.client.convert import Bands, Image, Region, Result, band_range, image_bytes, region_box
from service.client.errors import ClientError
from service.grpc.gen.mcga.v1 import reconstruction_pb2 as pb

RAW_DTYPES = ("uint8", "uint16", "float16", "float32")
_TTA_PREFIX = "TTA_OUTCOME_"


@dataclass(frozen=True)
class FrameOutcome:
    """One frame of a stream: a result, or why there is none (skipped in real time, or bad input)."""

    index: int
    result: Result | None = None
    skipped: str | None = None  # the reason, when the server skipped the frame (real-time mode)
    error: ClientError | None = None  # the frame's input was refused; the stream went on

    @property
    def ok(self) -> bool:
        return self.result is not None


def array_to_tensor(array: np.ndarray) -> pb.RawTensor:
    """An (H, W, 3) array as a little-endian RawTensor (float64 narrowed to float32)."""
    a = np.asarray(array)
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    if a.dtype.name not in RAW_DTYPES:
        raise ValueError(f"arrays of dtype {a.dtype} cannot be sent; use one of {', '.join(RAW_DTYPES)}")
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    return pb.RawTensor(shape=list(a.shape), dtype=a.dtype.name, data=a.tobytes())


def tensor_to_array(tensor: pb.RawTensor, data: bytes | None = None) -> np.ndarray:
    """The array of a RawTensor (`data` replaces its bytes, for a cube that came in chunks)."""
    dtype = np.dtype(tensor.dtype).newbyteorder("<")
    raw = tensor.data if data is None else data
    return np.frombuffer(raw, dtype=dtype).reshape(tuple(tensor.shape))


def image_message(image: Image, color: str = "linear") -> pb.Image:
    if isinstance(image, np.ndarray):
        return pb.Image(raw=array_to_tensor(image), color=color)
    return pb.Image(encoded=image_bytes(image), color=color)


def output_options(
    *,
    dtype: str = "float32",
    bands: Bands | None = None,
    region: Region | None = None,
    chunk_bytes: int = 0,
) -> pb.OutputOptions:
    """The output options; `bands` and `region` take what the REST client takes."""
    if chunk_bytes < 0:
        raise ValueError(f"chunk_bytes must be 0 or more, got {chunk_bytes}")
    options = pb.OutputOptions(dtype=dtype, chunk_bytes=chunk_bytes)
    if bands is not None:
        options.band_min_nm, options.band_max_nm = band_range(bands)
    if region is not None:
        x, y, w, h = region_box(region)
        if min(x, y, w, h) < 0:
            raise ValueError(f"region={region!r}: x, y, w, h must be 0 or more")
        options.region.CopyFrom(pb.Region(x=x, y=y, width=w, height=h))
    return options


def tta_name(value: int) -> str:
    return pb.TTAOutcome.Name(value).removeprefix(_TTA_PREFIX).lower()


def result_of(
    response: pb.ReconstructResponse, session_id: str | None = None, data: bytes | None = None
) -> Result:
    t = response.timings
    return Result(
        cube=tensor_to_array(response.cube.tensor, data),
        wavelengths_nm=tuple(response.cube.wavelengths_nm),
        model_version=response.model_version,
        tta=tta_name(response.tta),
        session_id=session_id,
        session_step=response.session_step if response.session_step else None,
        entropy=response.entropy if response.entropy else None,
        reprojection_error=response.reprojection_error,
        tiled=response.tiled,
        timings_ms={"queue": t.queue_ms, "inference": t.inference_ms, "tta": t.tta_ms, "total": t.total_ms},
    )


def stream_requests(
    frames: Iterable[Image], config: pb.StreamConfig, color: str = "linear"
) -> Iterator[pb.StreamRequest]:
    """The StreamConfig, then one Frame per image, numbered from 0."""
    yield pb.StreamRequest(config=config)
    for index, image in enumerate(frames):
        yield frame_request(index, image, color)


def frame_request(index: int, image: Image, color: str = "linear") -> pb.StreamRequest:
    return pb.StreamRequest(frame=pb.Frame(index=index, image=image_message(image, color)))


class Reassembler:
    """Turns StreamResponses into FrameOutcomes, joining a frame's CubeChunks."""

    def __init__(self) -> None:
        self._chunks: dict[int, list[tuple[int, bytes]]] = {}

    def feed(self, message: pb.StreamResponse) -> FrameOutcome | None:
        kind = message.WhichOneof("message")
        if kind == "chunk":
            c = message.chunk
            self._chunks.setdefault(c.frame_index, []).append((c.offset, c.data))
            return None
        if kind == "skipped":
            return FrameOutcome(message.skipped.frame_index, skipped=message.skipped.reason)
        if kind == "error":
            e = message.error
            err = ClientError(
                e.message, status="INVALID_ARGUMENT", code=e.code, details={"frame_index": e.frame_index}
            )
            return FrameOutcome(e.frame_index, error=err)
        if kind == "result":
            r = message.result
            parts = self._chunks.pop(r.frame_index, None)
            data = b"".join(d for _, d in sorted(parts)) if parts else None
            return FrameOutcome(r.frame_index, result=result_of(r.response, r.session_id, data))
        return None


def metadata_value(
    metadata: Iterable[tuple[str, str | bytes]] | Mapping[str, str] | None, key: str
) -> str | None:
    items = metadata.items() if isinstance(metadata, Mapping) else metadata or ()
    for k, v in items:
        if k == key:
            return v.decode() if isinstance(v, bytes) else v
    return None
