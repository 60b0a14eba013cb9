"""One `StreamReconstruct` call: frames in, answers out in frame order, a bounded number in flight.

Three tasks share a little state, all on the event loop:
- the reader pulls frames from the client into `waiting`. By default it stops pulling while
  `window` frames are waiting or unanswered, so gRPC's flow control pushes back on a fast client.
  In real-time mode (`max_lag > 0`) it pulls whenever answers are being read, and when more than
  `max_lag` frames wait it skips the oldest ones, each answered with a FrameSkipped and counted;
  real time drops the frames the server cannot keep up with, never the answers a client does not
  read: those stop the reader at `unread_cap` (a client that never read grew the server's memory
  by a FrameSkipped per frame it sent);
- the dispatcher takes the oldest waiting frame, gives it the next slot of `outbox` (frame order),
  decodes it off the loop and hands it to the core, which runs a session's frames in that order;
- `responses` awaits the slots in order and yields their messages.
A frame whose input is bad is answered with a FrameError and the stream goes on; any other error
ends the call with its status.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import numpy as np

from service.codecs import DecodeLimits
from service.contracts import ReconstructRequest
from service.core import InferenceCore
from service.errors import InvalidInputError, ServiceError
from service.grpc.convert import OutputSpec, decode_frame, frame_messages
from service.grpc.gen.mcga.v1 import reconstruction_pb2 as pb
from service.grpc.status import GrpcMetrics

SKIP_REASON = "real-time: more than max_lag_frames frames waiting"
UNREAD_SLACK = 64
Slot = asyncio.Future[list[pb.StreamResponse]]


@dataclass(frozen=True)
class StreamPlan:
    """A validated StreamConfig."""

    session_id: str  # reported with every result (the client's, or one made for the stream)
    core_session: str | None  # what the core sees: None for a stream without adaptation or client session
    tta_steps: int | None  # None: the server's default per frame; 0: use the session, do not adapt it
    output: OutputSpec
    chunk_bytes: int
    max_lag: int  # 0: never skip, apply flow control
    window: int  # frames decoded, queued or running but not yet answered


def is_frame_error(exc: BaseException) -> bool:
    """Errors about one frame's input: answered with a FrameError, the stream goes on."""
    return isinstance(exc, ServiceError) and exc.grpc_code == "INVALID_ARGUMENT"


def frame_error(index: int, exc: ServiceError) -> pb.StreamResponse:
    return pb.StreamResponse(error=pb.FrameError(frame_index=index, code=exc.code, message=exc.message))


class FrameStream:
    def __init__(
        self,
        core: InferenceCore,
        plan: StreamPlan,
        limits: DecodeLimits,
        metrics: GrpcMetrics,
        requests: AsyncIterator[pb.StreamRequest],
    ) -> None:
        self._core, self.plan, self._limits, self._metrics = core, plan, limits, metrics
        self._requests = requests
        self._waiting: deque[pb.Frame] = deque()
        self._outbox: deque[Slot] = deque()
        self._answering: set[asyncio.Task[None]] = set()
        self._wakes = (asyncio.Event(), asyncio.Event(), asyncio.Event())  # reader, dispatcher, writer
        self._reader: asyncio.Task[None] | None = None
        self._reader_done = self._dispatch_done = False
        self._failure: BaseException | None = None
        self.stopped_reading = False  # the server is draining: frames after `frames_read` were not read
        self.frames_read = 0

    def stop_reading(self) -> None:
        """Read no more frames (the server drains); frames already read are still answered."""
        if self._reader_done:
            return
        self.stopped_reading = True
        if self._reader is not None:
            self._reader.cancel()

    async def responses(self) -> AsyncIterator[pb.StreamResponse]:
        self._reader = asyncio.create_task(self._read(), name="mcga-stream-reader")
        dispatcher = asyncio.create_task(self._dispatch(), name="mcga-stream-dispatcher")
        try:
            while True:
                if self._failure is not None:
                    raise self._failure
                if self._outbox:
                    messages = await self._outbox[0]
                    self._outbox.popleft()
                    self._poke()
                    for message in messages:
                        yield message
                elif self._dispatch_done:
                    return
                else:
                    await self._until(2, lambda: bool(self._outbox) or self._dispatch_done)
        finally:
            await self._cancel_all(dispatcher)

    # ---- the three tasks' coordination ---------------------------------------------------------
    def _poke(self) -> None:
        for event in self._wakes:
            event.set()

    async def _until(self, who: int, ready: Callable[[], bool]) -> None:
        event = self._wakes[who]
        while True:
            event.clear()
            if ready() or self._failure is not None:
                return
            await event.wait()

    def _room(self) -> bool:
        return len(self._waiting) + len(self._outbox) < self.plan.window

    @property
    def unread_cap(self) -> int:
        """Answers (results, errors, skips) the client may leave unread before reading stops."""
        return 4 * (self.plan.window + self.plan.max_lag) + UNREAD_SLACK

    def _unread_room(self) -> bool:
        return len(self._outbox) < self.unread_cap

    async def _read(self) -> None:
        try:
            if self.stopped_reading:
                return
            async for request in self._requests:
                if request.WhichOneof("message") != "frame":
                    raise InvalidInputError(
                        "a stream takes one StreamConfig, as its first message; then frames"
                    )
                self._accept(request.frame)
                await self._until(0, self._room if not self.plan.max_lag else self._unread_room)
        except asyncio.CancelledError:
            if not self.stopped_reading:
                raise
        except Exception as exc:  # a protocol violation, or the transport failing
            self._failure = exc
        finally:
            self._reader_done = True
            self._poke()

    def _accept(self, frame: pb.Frame) -> None:
        self._waiting.append(frame)
        self.frames_read += 1
        while self.plan.max_lag and len(self._waiting) > self.plan.max_lag:
            old = self._waiting.popleft()
            skipped = pb.FrameSkipped(frame_index=old.index, reason=SKIP_REASON)
            self._outbox.append(self._settled([pb.StreamResponse(skipped=skipped)]))
            self._metrics.stream_frames.labels("skipped").inc()
        self._poke()

    def _settled(self, messages: list[pb.StreamResponse]) -> Slot:
        slot: Slot = asyncio.get_running_loop().create_future()
        slot.set_result(messages)
        return slot

    async def _dispatch(self) -> None:
        try:
            while True:
                await self._until(
                    1,
                    lambda: (
                        (bool(self._waiting) and len(self._outbox) < self.plan.window)
                        or (self._reader_done and not self._waiting)
                    ),
                )
                if not self._waiting or self._failure is not None:
                    return
                frame = self._waiting.popleft()
                slot: Slot = asyncio.get_running_loop().create_future()
                self._outbox.append(slot)
                self._poke()
                try:
                    rgb = await asyncio.to_thread(decode_frame, frame.image, self._limits)
                except Exception as exc:
                    self._settle_error(slot, frame.index, exc)
                    continue
                task = asyncio.create_task(self._answer(frame.index, rgb, slot))
                self._answering.add(task)
                task.add_done_callback(self._answering.discard)
        finally:
            self._dispatch_done = True
            self._poke()

    def _settle_error(self, slot: Slot, index: int, exc: BaseException) -> None:
        if isinstance(exc, ServiceError) and is_frame_error(exc):
            self._metrics.stream_frames.labels("error").inc()
            slot.set_result([frame_error(index, exc)])
        else:
            slot.set_exception(exc)

    async def _answer(self, index: int, rgb: np.ndarray, slot: Slot) -> None:
        plan = self.plan
        try:
            result = await self._core.reconstruct(
                ReconstructRequest(rgb, session_id=plan.core_session, tta_steps=plan.tta_steps)
            )
            messages = await asyncio.to_thread(
                frame_messages, result, plan.output, index, plan.session_id, plan.chunk_bytes
            )
        except asyncio.CancelledError:
            slot.cancel()
            raise
        except Exception as exc:
            self._settle_error(slot, index, exc)
        else:
            self._metrics.stream_frames.labels("ok").inc()
            slot.set_result(messages)

    async def _cancel_all(self, dispatcher: asyncio.Task[None]) -> None:
        tasks = [t for t in (self._reader, dispatcher, *self._answering) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for slot in self._outbox:
            if not slot.done():
                slot.cancel()
            elif not slot.cancelled():
                slot.exception()  # retrieved: no "exception was never retrieved" noise
        self._outbox.clear()
