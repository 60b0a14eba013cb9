"""StreamReconstruct over loopback with a real core: a stream is a session (state in real Redis),
answers in frame order, chunked cubes, real-time skipping, flow control, per-frame errors, protocol
errors and draining."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import numpy as np
import pytest
import redis
from PIL import Image

from service.client.errors import ClientError
from service.client.grpc_client import CHANNEL_OPTIONS, AsyncGrpcClient, stream_frames
from service.client.grpc_convert import FrameOutcome, Reassembler, array_to_tensor
from service.contracts import ReconstructRequest, ReconstructResult
from service.core import InferenceCore
from service.grpc.gen.mcga.v1 import reconstruction_pb2 as pb
from service.grpc.gen.mcga.v1 import reconstruction_pb2_grpc as pb_grpc
from service.grpc.server import GrpcEdge, build_grpc_edge
from service.settings import Settings

T = TypeVar("T")
SettingsFactory = Callable[..., Settings]
Frames = Callable[..., list[np.ndarray]]


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), timeout=120))


@dataclass
class Served:
    core: InferenceCore
    edge: GrpcEdge
    stub: pb_grpc.ReconstructionStub
    target: str

    def sample(self, name: str, **labels: str) -> float:
        return self.core.metrics.registry.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def grpc_serving(settings: Settings) -> AsyncIterator[Served]:
    """A real core behind an in-process gRPC server on a free loopback port, and a stub."""
    core = InferenceCore.build(settings)
    await core.start()
    edge = build_grpc_edge(core, settings, "127.0.0.1:0")
    await edge.start()
    target = f"127.0.0.1:{edge.port}"
    channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
    try:
        yield Served(core, edge, pb_grpc.ReconstructionStub(channel), target)
    finally:
        await channel.close()
        await edge.stop(0)
        await core.stop()


def config(**kwargs: object) -> pb.StreamRequest:
    return pb.StreamRequest(config=pb.StreamConfig(**kwargs))  # type: ignore[arg-type]


def frame(index: int, image: np.ndarray | bytes) -> pb.StreamRequest:
    payload = pb.Image(encoded=image) if isinstance(image, bytes) else pb.Image(raw=array_to_tensor(image))
    return pb.StreamRequest(frame=pb.Frame(index=index, image=payload))


async def outcomes(call: AsyncIterator[pb.StreamResponse]) -> list[FrameOutcome]:
    assembler, out = Reassembler(), []
    async for message in call:
        if (item := assembler.feed(message)) is not None:
            out.append(item)
    return out


def stored_step(url: str, key: str) -> int:
    """The step count in a session blob as stored in Redis (safetensors header metadata)."""
    client = redis.Redis.from_url(url)
    blob = client.hget(key, "b")
    client.close()
    assert isinstance(blob, bytes), f"no session at {key}"
    header = json.loads(blob[8 : 8 + int.from_bytes(blob[:8], "little")])
    return int(header["__metadata__"]["step"])


def test_stream_is_a_session_stored_in_redis(
    make_settings: SettingsFactory, frames: Frames, shared_redis: tuple[str, str]
) -> None:
    url, prefix = shared_redis
    session = f"cam-{uuid.uuid4().hex[:8]}"
    n = 5

    async def scenario() -> None:
        async with grpc_serving(make_settings(redis_url=url, redis_key_prefix=prefix)) as s:
            async with AsyncGrpcClient(s.target) as client:
                got = [o async for o in client.stream(frames(n, 16, 16, seed=3), session_id=session)]
            assert [o.index for o in got] == list(range(n))
            results = [o.result for o in got if o.result is not None]
            assert [r.session_step for r in results] == list(range(1, n + 1))
            assert all(r.session_id == session and r.tta == "adapted" for r in results)
            assert all(r.cube.shape == (16, 16, 31) for r in results)
            assert stored_step(url, prefix + session) == n
            assert (await s.core.session_info(session)).step == n
            assert s.sample("mcga_stream_frames_total", outcome="ok") == n

    run(scenario)


def test_large_cubes_arrive_in_chunks_before_their_result(
    make_settings: SettingsFactory, frames: Frames
) -> None:
    rgbs = frames(3, 32, 32, seed=4)

    async def scenario() -> None:
        async with grpc_serving(make_settings()) as s:
            requests = [config(adapt=False, output=pb.OutputOptions(chunk_bytes=4096))]
            requests += [frame(i, x) for i, x in enumerate(rgbs)]
            messages = [m async for m in s.stub.StreamReconstruct(iter(requests))]
            kinds = [m.WhichOneof("message") for m in messages]
            cube_bytes = 32 * 32 * 31 * 4
            assert kinds.count("chunk") == 3 * -(-cube_bytes // 4096) and kinds.count("result") == 3
            for m in messages:
                if m.HasField("chunk"):
                    assert len(m.chunk.data) <= 4096
                if m.HasField("result"):
                    assert not m.result.response.cube.tensor.data  # its bytes came as chunks
            got = await outcomes(s.stub.StreamReconstruct(iter(requests)))
            for index, (o, rgb) in enumerate(zip(got, rgbs, strict=True)):
                assert o.index == index and o.result is not None
                alone = await s.core.reconstruct(ReconstructRequest(rgb))
                np.testing.assert_allclose(o.result.cube, alone.cube, atol=1e-5)  # batched vs alone

    run(scenario)


def test_real_time_mode_skips_the_oldest_waiting_frames(
    make_settings: SettingsFactory, frames: Frames
) -> None:
    n = 40

    async def scenario() -> None:
        async with grpc_serving(make_settings()) as s:
            requests = [config(session_id="rt-1", adapt=True, max_lag_frames=1)]
            requests += [frame(i, x) for i, x in enumerate(frames(n, 64, 64, seed=5))]
            got = await outcomes(s.stub.StreamReconstruct(iter(requests)))
            assert [o.index for o in got] == list(range(n))  # every frame answered once, in order
            skipped = [o for o in got if o.skipped]
            done = [o.result for o in got if o.result is not None]
            assert skipped and done and len(skipped) + len(done) == n
            assert all("max_lag_frames" in (o.skipped or "") for o in skipped)
            assert [r.session_step for r in done] == list(range(1, len(done) + 1))
            assert s.sample("mcga_stream_frames_total", outcome="skipped") == len(skipped)

    run(scenario)


def test_real_time_mode_stops_reading_when_its_answers_go_unread(make_settings: SettingsFactory) -> None:
    """Real time skips frames the server cannot keep up with; a client that never reads its answers
    gets flow control instead, so the unread answers (one FrameSkipped a frame) stay bounded."""
    sent = 20_000

    async def scenario() -> None:
        async with grpc_serving(make_settings()) as s:
            # A receive window that stays at HTTP/2's 64 KB (no BDP growth): 20,000 unread answers
            # overflow it within the test's seconds, as a few million would overflow a grown one.
            options = [*CHANNEL_OPTIONS, ("grpc.http2.bdp_probe", 0)]
            channel = grpc.aio.insecure_channel(s.target, options=options)
            call = pb_grpc.ReconstructionStub(channel).StreamReconstruct()
            await call.write(config(adapt=False, max_lag_frames=1))

            junk = pb.Image(encoded=bytes(4096))

            async def flood() -> None:
                for i in range(sent):
                    await call.write(pb.StreamRequest(frame=pb.Frame(index=i, image=junk)))

            writer = asyncio.create_task(flood())
            await asyncio.sleep(3.0)  # the server reads what it is willing to buffer, then stops
            settled = sum(s.sample("mcga_stream_frames_total", outcome=o) for o in ("ok", "error", "skipped"))
            assert not writer.done(), "the server read all the frames of a client that reads nothing"
            assert settled < sent / 4, settled  # the cap, plus what gRPC's own buffers hold
            writer.cancel()
            call.cancel()
            await channel.close()

    run(scenario)


def test_flow_control_bounds_frames_in_flight(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        async with grpc_serving(make_settings(max_batch=4)) as s:
            gate, calls = asyncio.Event(), 0
            real = s.core.reconstruct

            async def held(req: ReconstructRequest) -> ReconstructResult:
                nonlocal calls
                calls += 1
                await gate.wait()
                return await real(req)

            monkeypatch.setattr(s.core, "reconstruct", held)
            image = pb.Image(raw=array_to_tensor(np.zeros((128, 128, 3), np.float32)))  # 196 KB a frame
            call = s.stub.StreamReconstruct()
            await call.write(config(adapt=False))
            written = 0

            async def flood() -> None:
                nonlocal written
                for i in range(200):  # 39 MB: far more than gRPC's transport buffers hold
                    await call.write(pb.StreamRequest(frame=pb.Frame(index=i, image=image)))
                    written += 1

            writer = asyncio.create_task(flood())
            await asyncio.sleep(1.5)
            assert calls <= 4  # the stream's window: no more frames taken while none is answered
            assert written < 200 and not writer.done()  # the client is held back
            gate.set()
            first = [await call.read() for _ in range(8)]
            assert [m.result.frame_index for m in first] == list(range(8))
            call.cancel()
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            for _ in range(750):  # up to 15 s for the server to notice the hang-up
                if s.sample("mcga_grpc_streams_active") == 0:
                    break
                await asyncio.sleep(0.02)
            assert s.sample("mcga_grpc_streams_active") == 0

    run(scenario)


def _png(arr: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(arr).save(out, "PNG")
    return out.getvalue()


def test_bad_frames_get_frame_errors_and_the_stream_goes_on(make_settings: SettingsFactory) -> None:
    good = np.random.default_rng(6).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    bad: list[np.ndarray | bytes] = [
        b"definitely not an image",
        _png(np.zeros((16, 16, 4), np.uint8)),
        np.full((16, 16, 3), np.nan, np.float32),
    ]

    async def scenario() -> None:
        async with grpc_serving(make_settings()) as s:
            requests = [config(session_id="errs-1", adapt=True), frame(0, good)]
            requests += [frame(i + 1, b) for i, b in enumerate(bad)] + [frame(4, good)]
            call = s.stub.StreamReconstruct(iter(requests))
            got = await outcomes(call)
            assert await call.code() == grpc.StatusCode.OK
            assert [o.index for o in got] == [0, 1, 2, 3, 4]
            assert got[0].ok and got[4].ok
            errors = [o.error for o in got[1:4]]
            assert [e.code for e in errors if e] == [
                "unsupported_media_type",
                "invalid_input",
                "invalid_input",
            ]
            assert "4 channels" in (errors[1].message if errors[1] else "")
            assert "NaN" in (errors[2].message if errors[2] else "")
            assert got[4].result is not None and got[4].result.session_step == 2
            assert s.sample("mcga_stream_frames_total", outcome="error") == 3

    run(scenario)


@pytest.mark.parametrize(
    ("requests", "fragment"),
    [
        ([frame(0, np.zeros((8, 8, 3), np.uint8))], "first message"),
        ([config(session_id="has spaces")], "session_id"),
        ([config(output=pb.OutputOptions(band_min_nm=800, band_max_nm=900))], "no band"),
        ([config(output=pb.OutputOptions(chunk_bytes=10))], "chunk_bytes"),
        ([config(), frame(0, np.zeros((8, 8, 3), np.uint8)), config()], "one StreamConfig"),
    ],
)
def test_protocol_errors_end_the_stream(
    make_settings: SettingsFactory, requests: list[pb.StreamRequest], fragment: str
) -> None:
    async def scenario() -> None:
        async with grpc_serving(make_settings()) as s:
            # Written one by one and never half-closed: the last message is the one the server refuses,
            # so no client operation can meet the ended stream (with a request iterator grpcio's
            # asyncio client may report that race in place of the server's status, grpc/grpc#36066).
            call = s.stub.StreamReconstruct()
            for request in requests:
                await call.write(request)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for _ in call:  # answers before the refusal (the status comes after them)
                    pass
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert fragment in (info.value.details() or "")

    run(scenario)


def test_async_client_sends_frames_only_after_the_config_is_accepted(
    make_settings: SettingsFactory, frames: Frames
) -> None:
    """A refused config reaches the caller as the server's INVALID_ARGUMENT, and no frame was written
    into the ended stream (where grpcio's asyncio client may report INTERNAL, grpc/grpc#36066)."""
    pulled: list[int] = []

    async def counted(n: int) -> AsyncIterator[np.ndarray]:
        for rgb in frames(n, 8, 8):
            pulled.append(1)
            yield rgb

    async def scenario() -> None:
        async with grpc_serving(make_settings()) as s, AsyncGrpcClient(s.target) as client:
            for _ in range(10):
                with pytest.raises(ClientError) as info:
                    async for _ in client.stream(counted(3), session_id="has spaces"):
                        pass
                assert info.value.status == "INVALID_ARGUMENT" and "session_id" in info.value.message
            assert pulled == []
            got = [o async for o in client.stream(counted(3), session_id="fine")]
            assert [o.index for o in got] == [0, 1, 2] and len(pulled) == 3

    run(scenario)


def test_draining_answers_frames_read_then_ends_unavailable(make_settings: SettingsFactory) -> None:
    async def scenario() -> None:
        async with grpc_serving(make_settings()) as s:
            call = s.stub.StreamReconstruct()
            await call.write(config(session_id="drain-1", adapt=True))
            for i in range(2):
                await call.write(frame(i, np.zeros((8, 8, 3), np.uint8)))
            first = [await call.read() for _ in range(2)]
            assert [m.result.frame_index for m in first] == [0, 1]
            await s.edge.stop(5)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call.read()
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "shutting down" in (info.value.details() or "")
            assert (await s.core.session_info("drain-1")).step == 2

    run(scenario)


def test_frames_that_raise_end_the_stream_after_their_answers_with_the_callers_error(
    make_settings: SettingsFactory, frames: Frames
) -> None:
    """A camera that fails mid-stream: the frames sent before are answered, then the caller gets its
    own exception back (grpcio alone turned it into UNKNOWN, or into a bare CancelledError)."""
    rgbs = frames(2, 8, 8, seed=11)

    def failing() -> Iterator[np.ndarray]:
        yield from rgbs
        raise RuntimeError("camera unplugged")

    async def failing_async() -> AsyncIterator[np.ndarray]:
        for rgb in rgbs:
            yield rgb
        raise RuntimeError("camera unplugged")

    async def scenario() -> None:
        async with grpc_serving(make_settings()) as s, AsyncGrpcClient(s.target) as client:
            for source in (failing_async(), failing()):
                got: list[FrameOutcome] = []

                async def collect(source: Any = source, got: list[FrameOutcome] = got) -> None:
                    async for outcome in client.stream(source, session_id="unplugged"):
                        got.append(outcome)

                with pytest.raises(RuntimeError, match="camera unplugged"):
                    await collect()
                assert [o.index for o in got if o.ok] == [0, 1]

            def blocking() -> list[FrameOutcome]:
                got: list[FrameOutcome] = []
                with pytest.raises(RuntimeError, match="camera unplugged"):
                    got.extend(stream_frames(s.target, failing(), session_id="unplugged-2"))
                return got

            assert [o.index for o in await asyncio.to_thread(blocking) if o.ok] == [0, 1]

    run(scenario)
