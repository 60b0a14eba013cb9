"""gRPC clients of `mcga.v1.Reconstruction`: `GrpcClient` (blocking) and `AsyncGrpcClient` (asyncio),
and `stream_frames` / `astream_frames` for a one-off stream.

    for out in stream_frames("127.0.0.1:50051", frames, session_id="cam-1"):
        if out.ok: use(out.result.cube)          # (H, W, 31), frames in order
        elif out.skipped: ...                    # real-time mode dropped it (max_lag_frames)
        else: log(out.error)                     # that frame's input was refused; the stream goes on

Channels accept messages of any size (a 512x512 float32 cube is 32 MB; gRPC's default is 4 MB).
`api_key` is sent as `x-api-key` metadata on every call; `tls=True` (or `root_certificates`, PEM
bytes of a private CA) opens a TLS channel. An `AsyncGrpcClient` belongs to the event loop it was
made in (grpcio's asyncio channels do): make it inside the coroutine that uses it, not before
`asyncio.run`.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any, Self

import grpc
from google.protobuf.json_format import MessageToDict

from service.client.convert import Image, Result
from service.client.grpc_channel import CHANNEL_OPTIONS, client_error, open_channel
from service.client.grpc_convert import (
    FrameOutcome,
    Reassembler,
    frame_request,
    image_message,
    output_options,
    result_of,
    stream_requests,
)
from service.grpc.gen.mcga.v1 import reconstruction_pb2 as pb
from service.grpc.gen.mcga.v1 import reconstruction_pb2_grpc as pb_grpc

__all__ = [
    "CHANNEL_OPTIONS",
    "AsyncGrpcClient",
    "GrpcClient",
    "astream_frames",
    "client_error",
    "stream_frames",
]


def _request(
    image: Image, session_id: str | None, tta_steps: int | None, color: str, **output: Any
) -> pb.ReconstructRequest:
    if tta_steps is not None and tta_steps < 0:
        raise ValueError(f"tta_steps must be 0 or more, got {tta_steps}")
    return pb.ReconstructRequest(
        image=image_message(image, color),
        session_id=session_id or "",
        tta_steps=tta_steps,  # None leaves it unset: the server's default
        output=output_options(**output),
    )


def _config(session_id: str | None, adapt: bool, max_lag_frames: int, **output: Any) -> pb.StreamConfig:
    if max_lag_frames < 0:
        raise ValueError(f"max_lag_frames must be 0 (never skip) or more, got {max_lag_frames}")
    return pb.StreamConfig(
        session_id=session_id or "",
        adapt=adapt,
        max_lag_frames=max_lag_frames,
        output=output_options(**output),
    )


def model_dict(info: pb.ModelInfo) -> dict[str, Any]:
    """The model's description as REST's /v1/model gives it (proto3 JSON would make the 64-bit
    parameter count a string)."""
    out = MessageToDict(info, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    out["parameters"] = int(info.parameters)
    out["wavelengths_nm"] = [float(w) for w in info.wavelengths_nm]
    return out


class _CallerFrames:
    """The caller's frames. An exception they raise ends the request stream as its end would (a
    half-close), so the frames sent before it are still answered; the stream then raises it to the
    caller, after those answers. (Left to grpcio it became UNKNOWN "Exception iterating requests!"
    on the blocking client and a bare CancelledError on the asyncio one, the answers lost.)"""

    def __init__(self, frames: Iterable[Image] | AsyncIterable[Image]) -> None:
        self.frames = frames
        self.error: Exception | None = None

    def __iter__(self) -> Iterator[Image]:
        if isinstance(self.frames, AsyncIterable):
            raise TypeError("the blocking client takes an iterable of frames; use AsyncGrpcClient")
        try:
            yield from self.frames
        except Exception as exc:
            self.error = exc

    async def __aiter__(self) -> AsyncIterator[Image]:
        try:
            if isinstance(self.frames, AsyncIterable):
                async for image in self.frames:
                    yield image
            else:
                for image in self.frames:
                    yield image
        except Exception as exc:
            self.error = exc

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error


class GrpcClient:
    def __init__(
        self,
        target: str,
        *,
        timeout: float | None = 60.0,
        options: Iterable[tuple[str, Any]] = (),
        api_key: str | None = None,
        tls: bool = False,
        root_certificates: bytes | None = None,
    ) -> None:
        self._channel, self._metadata = open_channel(
            target, options, api_key=api_key, tls=tls, root_certificates=root_certificates, aio=False
        )
        self._stub = pb_grpc.ReconstructionStub(self._channel)
        self.timeout = timeout

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def reconstruct(
        self,
        image: Image,
        *,
        session_id: str | None = None,
        tta_steps: int | None = None,
        color: str = "linear",
        **output: Any,
    ) -> Result:
        """One frame; `output`: dtype, bands=(lo, hi) nm, region=(x, y, w, h)."""
        try:
            response = self._stub.Reconstruct(
                _request(image, session_id, tta_steps, color, **output),
                timeout=self.timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as exc:
            raise client_error(exc) from None
        return result_of(response, session_id)

    def model(self) -> dict[str, Any]:
        try:
            info = self._stub.GetModel(pb.GetModelRequest(), timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise client_error(exc) from None
        return model_dict(info)

    def stream(
        self,
        frames: Iterable[Image],
        *,
        session_id: str | None = None,
        adapt: bool = True,
        max_lag_frames: int = 0,
        color: str = "linear",
        **output: Any,
    ) -> Iterator[FrameOutcome]:
        """One stream (one session): an outcome per frame, in frame order; `output` as in reconstruct,
        plus chunk_bytes. Frames are sent as the server asks for them (flow control)."""
        config = _config(session_id, adapt, max_lag_frames, **output)
        source = _CallerFrames(frames)
        call = self._stub.StreamReconstruct(stream_requests(source, config, color), metadata=self._metadata)
        assembler = Reassembler()
        try:
            for message in call:
                outcome = assembler.feed(message)
                if outcome is not None:
                    yield outcome
        except grpc.RpcError as exc:
            source.raise_error()  # the caller's own failure, when it ended the stream
            raise client_error(exc) from None
        finally:
            call.cancel()  # no-op when the stream ended; stops it when the caller stopped early
        source.raise_error()


class AsyncGrpcClient:
    def __init__(
        self,
        target: str,
        *,
        timeout: float | None = 60.0,
        options: Iterable[tuple[str, Any]] = (),
        api_key: str | None = None,
        tls: bool = False,
        root_certificates: bytes | None = None,
    ) -> None:
        self._channel, self._metadata = open_channel(
            target, options, api_key=api_key, tls=tls, root_certificates=root_certificates, aio=True
        )
        self._stub = pb_grpc.ReconstructionStub(self._channel)
        self.timeout = timeout

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def reconstruct(
        self,
        image: Image,
        *,
        session_id: str | None = None,
        tta_steps: int | None = None,
        color: str = "linear",
        **output: Any,
    ) -> Result:
        try:
            response = await self._stub.Reconstruct(
                _request(image, session_id, tta_steps, color, **output),
                timeout=self.timeout,
                metadata=self._metadata,
            )
        except grpc.RpcError as exc:
            raise client_error(exc) from None
        return result_of(response, session_id)

    async def model(self) -> dict[str, Any]:
        try:
            info = await self._stub.GetModel(
                pb.GetModelRequest(), timeout=self.timeout, metadata=self._metadata
            )
        except grpc.RpcError as exc:
            raise client_error(exc) from None
        return model_dict(info)

    async def stream(
        self,
        frames: Iterable[Image] | AsyncIterable[Image],
        *,
        session_id: str | None = None,
        adapt: bool = True,
        max_lag_frames: int = 0,
        color: str = "linear",
        **output: Any,
    ) -> AsyncIterator[FrameOutcome]:
        """`GrpcClient.stream` for asyncio.

        Frames are written only after the server accepted the config (its initial metadata, sent
        once the config is read and valid). grpcio's asyncio client may report INTERNAL "Internal
        error from Core" in place of the server's status when a write meets a stream the server has
        already ended (grpc/grpc#36066, open; 2 streams in 300 under load here), so a bad config is
        reported as the server's INVALID_ARGUMENT. A refused API key can still race with the config
        write itself; `GrpcClient` always reports the server's status."""
        config = _config(session_id, adapt, max_lag_frames, **output)
        source = _CallerFrames(frames)

        async def requests() -> AsyncIterator[pb.StreamRequest]:
            yield pb.StreamRequest(config=config)
            await call.initial_metadata()  # returns at once, empty, when the server ended the stream
            if call.done():
                return
            index = 0
            async for image in source:
                yield frame_request(index, image, color)
                index += 1

        call = self._stub.StreamReconstruct(requests(), metadata=self._metadata)
        assembler = Reassembler()
        try:
            async for message in call:
                outcome = assembler.feed(message)
                if outcome is not None:
                    yield outcome
        except grpc.RpcError as exc:
            source.raise_error()
            raise client_error(exc) from None
        finally:
            call.cancel()
        source.raise_error()


def stream_frames(
    target: str,
    frames: Iterable[Image],
    session_id: str | None = None,
    adapt: bool = True,
    max_lag_frames: int = 0,
    *,
    api_key: str | None = None,
    tls: bool = False,
    root_certificates: bytes | None = None,
    **options: Any,
) -> Iterator[FrameOutcome]:
    """Open a channel (`api_key`, `tls`, `root_certificates` as in `GrpcClient`), stream `frames` as one
    session, yield an outcome per frame, close; `options` as in `GrpcClient.stream`."""
    with GrpcClient(
        target, timeout=None, api_key=api_key, tls=tls, root_certificates=root_certificates
    ) as client:
        yield from client.stream(
            frames, session_id=session_id, adapt=adapt, max_lag_frames=max_lag_frames, **options
        )


async def astream_frames(
    target: str,
    frames: Iterable[Image] | AsyncIterable[Image],
    session_id: str | None = None,
    adapt: bool = True,
    max_lag_frames: int = 0,
    *,
    api_key: str | None = None,
    tls: bool = False,
    root_certificates: bytes | None = None,
    **options: Any,
) -> AsyncIterator[FrameOutcome]:
    """`stream_frames` for asyncio."""
    async with AsyncGrpcClient(
        target, timeout=None, api_key=api_key, tls=tls, root_certificates=root_certificates
    ) as client:
        async for outcome in client.stream(
            frames, session_id=session_id, adapt=adapt, max_lag_frames=max_lag_frames, **options
        ):
            yield outcome
