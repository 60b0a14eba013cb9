"""The gRPC edge's unary side over loopback with a real core: Reconstruct (encoded and raw frames,
output options, sessions), GetModel, error mapping, message limits, health and reflection."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from PIL import Image

from service.client.grpc_client import CHANNEL_OPTIONS, model_dict
from service.client.grpc_convert import array_to_tensor, tensor_to_array
from service.contracts import ReconstructRequest, ReconstructResult, Timings, TTAOutcome
from service.core import InferenceCore
from service.errors import QueueFullError
from service.grpc.gen.mcga.v1 import reconstruction_pb2 as pb
from service.grpc.gen.mcga.v1 import reconstruction_pb2_grpc as pb_grpc
from service.grpc.server import SERVICE_NAME, GrpcEdge, build_grpc_edge
from service.settings import Settings

T = TypeVar("T")
SettingsFactory = Callable[..., Settings]


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), timeout=120))


@dataclass
class Served:
    core: InferenceCore
    edge: GrpcEdge
    channel: grpc.aio.Channel
    stub: pb_grpc.ReconstructionStub


@asynccontextmanager
async def grpc_serving(settings: Settings, *, start_core: bool = True) -> AsyncIterator[Served]:
    """A real core behind an in-process gRPC server on a free loopback port, and a channel to it."""
    core = InferenceCore.build(settings)
    if start_core:
        await core.start()
    edge = build_grpc_edge(core, settings, "127.0.0.1:0")
    await edge.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{edge.port}", options=CHANNEL_OPTIONS)
    try:
        yield Served(core, edge, channel, pb_grpc.ReconstructionStub(channel))
    finally:
        await channel.close()
        await edge.stop(0)
        await core.stop()


def png_bytes(arr: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(arr).save(out, "PNG")
    return out.getvalue()


def raw_image(arr: np.ndarray) -> pb.Image:
    return pb.Image(raw=array_to_tensor(arr))


def metadata(err: grpc.aio.AioRpcError) -> dict[str, str]:
    return {k: str(v) for k, v in err.trailing_metadata() or ()}


def test_png_and_raw_frames_give_the_same_cube(make_settings: SettingsFactory) -> None:
    rgb8 = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)

    async def scenario() -> None:
        async with grpc_serving(make_settings()) as s:
            model = await s.stub.GetModel(pb.GetModelRequest())
            assert model.bands == 31 and len(model.wavelengths_nm) == 31 and model.version
            # The clients' dict of it matches REST's /v1/model field for field (ints stay ints).
            info = s.core.model_info
            described = model_dict(model)
            assert described["parameters"] == info.parameters and described["multiple"] == info.multiple
            assert described["wavelengths_nm"] == pytest.approx(list(info.wavelengths_nm))
            by_png = await s.stub.Reconstruct(pb.ReconstructRequest(image=pb.Image(encoded=png_bytes(rgb8))))
            by_raw = await s.stub.Reconstruct(pb.ReconstructRequest(image=raw_image(rgb8)))
            as_float = raw_image(rgb8.astype(np.float32) / 255)
            by_float = await s.stub.Reconstruct(pb.ReconstructRequest(image=as_float))
            cubes = [tensor_to_array(r.cube.tensor) for r in (by_png, by_raw, by_float)]
            assert cubes[0].shape == (20, 24, 31) and cubes[0].dtype == np.float32
            np.testing.assert_array_equal(cubes[0], cubes[1])
            np.testing.assert_allclose(cubes[0], cubes[2], atol=1e-5)
            assert list(by_png.cube.wavelengths_nm) == list(model.wavelengths_nm)
            assert by_png.model_version == model.version and by_png.tta == pb.TTA_OUTCOME_NONE
            assert by_png.timings.total_ms > 0 and by_png.reprojection_error > 0

    run(scenario)


def test_output_options_and_sessions(make_settings: SettingsFactory) -> None:
    rgb = np.random.default_rng(1).random((16, 20, 3), dtype=np.float32)

    async def scenario() -> None:
        async with grpc_serving(make_settings()) as s:
            full = await s.stub.Reconstruct(pb.ReconstructRequest(image=raw_image(rgb)))
            options = pb.OutputOptions(
                dtype="float16",
                band_min_nm=450,
                band_max_nm=550,
                region=pb.Region(x=2, y=3, width=8, height=5),
            )
            cut = await s.stub.Reconstruct(pb.ReconstructRequest(image=raw_image(rgb), output=options))
            cube = tensor_to_array(cut.cube.tensor)
            assert cube.shape == (5, 8, 11) and cube.dtype == np.float16
            assert list(cut.cube.wavelengths_nm) == [450.0 + 10 * i for i in range(11)]
            expected = tensor_to_array(full.cube.tensor)[3:8, 2:10, 5:16]
            np.testing.assert_allclose(cube, expected, atol=2e-3)
            steps = []
            for _ in range(2):
                r = await s.stub.Reconstruct(
                    pb.ReconstructRequest(image=raw_image(rgb), session_id="unary-1")
                )
                assert r.tta == pb.TTA_OUTCOME_ADAPTED and r.entropy > 0
                steps.append(r.session_step)
            assert steps == [1, 2]
            assert (await s.core.session_info("unary-1")).step == 2
            # tta_steps=0 is "no step" (the session used as it stands), as over REST: `optional`.
            still = await s.stub.Reconstruct(
                pb.ReconstructRequest(image=raw_image(rgb), session_id="unary-1", tta_steps=0)
            )
            assert still.tta == pb.TTA_OUTCOME_NONE and (await s.core.session_info("unary-1")).step == 2

    run(scenario)


def _rgba_png() -> bytes:
    return png_bytes(np.zeros((8, 8, 4), np.uint8))


BAD_REQUESTS: dict[str, tuple[pb.ReconstructRequest, str]] = {
    "undecodable": (pb.ReconstructRequest(image=pb.Image(encoded=b"not an image")), "unsupported_media_type"),
    "wrong channels": (pb.ReconstructRequest(image=pb.Image(encoded=_rgba_png())), "invalid_input"),
    "NaN raw tensor": (
        pb.ReconstructRequest(image=raw_image(np.full((8, 8, 3), np.nan, np.float32))),
        "invalid_input",
    ),
    "raw bytes short": (
        pb.ReconstructRequest(
            image=pb.Image(raw=pb.RawTensor(shape=[8, 8, 3], dtype="uint8", data=b"\0" * 10))
        ),
        "invalid_input",
    ),
    "raw channels": (pb.ReconstructRequest(image=raw_image(np.zeros((8, 8, 4), np.uint8))), "invalid_input"),
    "no payload": (pb.ReconstructRequest(image=pb.Image()), "invalid_input"),
    "bad color": (
        pb.ReconstructRequest(image=pb.Image(raw=array_to_tensor(np.zeros((8, 8, 3), np.uint8)), color="p3")),
        "invalid_input",
    ),
    "bad output dtype": (
        pb.ReconstructRequest(
            image=raw_image(np.zeros((8, 8, 3), np.uint8)), output=pb.OutputOptions(dtype="int8")
        ),
        "invalid_input",
    ),
    "region outside": (
        pb.ReconstructRequest(
            image=raw_image(np.zeros((8, 8, 3), np.uint8)),
            output=pb.OutputOptions(region=pb.Region(x=4, y=0, width=8, height=8)),
        ),
        "invalid_input",
    ),
    "bad session": (
        pb.ReconstructRequest(image=raw_image(np.zeros((8, 8, 3), np.uint8)), session_id="no spaces"),
        "invalid_input",
    ),
    "giant": (pb.ReconstructRequest(image=raw_image(np.zeros((80, 80, 3), np.uint8))), "payload_too_large"),
}


def test_bad_frames_are_invalid_argument(make_settings: SettingsFactory) -> None:
    async def scenario() -> None:
        async with grpc_serving(make_settings(max_image_pixels=64 * 64)) as s:
            for name, (request, code) in BAD_REQUESTS.items():
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await s.stub.Reconstruct(request)
                assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
                assert metadata(info.value)["error-code"] == code, name
                assert "Traceback" not in (info.value.details() or "")
            ok = await s.stub.Reconstruct(
                pb.ReconstructRequest(image=raw_image(np.zeros((8, 8, 3), np.uint8)))
            )
            assert tuple(ok.cube.tensor.shape) == (8, 8, 31)
            counted = s.core.metrics.registry.get_sample_value(
                "mcga_grpc_requests_total", {"method": "Reconstruct", "code": "INVALID_ARGUMENT"}
            )
            assert counted == len(BAD_REQUESTS)

    run(scenario)


def test_overload_and_unknown_errors_map_without_leaking(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        async with grpc_serving(make_settings()) as s:
            request = pb.ReconstructRequest(image=raw_image(np.zeros((8, 8, 3), np.uint8)))

            async def overloaded(_: ReconstructRequest) -> ReconstructResult:
                raise QueueFullError("queue full (64 waiting)", retry_after_s=0.25)

            monkeypatch.setattr(s.core, "reconstruct", overloaded)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await s.stub.Reconstruct(request)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert float(metadata(info.value)["retry-after-s"]) == pytest.approx(0.25)

            async def broken(_: ReconstructRequest) -> ReconstructResult:
                raise RuntimeError("secret internals at /srv/model.py:42")

            monkeypatch.setattr(s.core, "reconstruct", broken)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await s.stub.Reconstruct(request)
            err = info.value
            assert err.code() == grpc.StatusCode.INTERNAL
            request_id = metadata(err)["request-id"]
            assert request_id in (err.details() or "")
            assert "secret" not in (err.details() or "") and "Traceback" not in (err.details() or "")

    run(scenario)


def fake_result(side: int) -> ReconstructResult:
    cube = np.zeros((side, side, 31), np.float32)
    wavelengths = tuple(400.0 + 10 * i for i in range(31))
    timings = Timings(0.0, 0.0, 0.0, 0.0)
    return ReconstructResult(cube, wavelengths, "v", TTAOutcome.NONE, None, None, None, False, timings)


def test_message_limits(make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        # Default limits: a 512x512 float32 cube (32 MB) comes back in one message.
        async with grpc_serving(make_settings()) as s:

            async def big(_: ReconstructRequest) -> ReconstructResult:
                return fake_result(512)

            monkeypatch.setattr(s.core, "reconstruct", big)
            r = await s.stub.Reconstruct(
                pb.ReconstructRequest(image=raw_image(np.zeros((8, 8, 3), np.uint8)))
            )
            assert (
                tuple(r.cube.tensor.shape) == (512, 512, 31) and len(r.cube.tensor.data) == 512 * 512 * 31 * 4
            )
        # A 1 MiB limit: larger requests are refused by gRPC, larger cubes by the edge, with advice.
        async with grpc_serving(make_settings(grpc_max_message_bytes=1 << 20)) as s:
            huge = pb.ReconstructRequest(image=pb.Image(encoded=b"\x89PNG" + b"\0" * (1 << 20)))
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await s.stub.Reconstruct(huge)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            frame = raw_image(np.zeros((96, 96, 3), np.uint8))  # cube: 96*96*31*4 = 1.1 MB
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await s.stub.Reconstruct(pb.ReconstructRequest(image=frame))
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "StreamReconstruct" in (info.value.details() or "")
            half = await s.stub.Reconstruct(
                pb.ReconstructRequest(image=frame, output=pb.OutputOptions(dtype="float16"))
            )
            assert tuple(half.cube.tensor.shape) == (96, 96, 31)

    run(scenario)


def test_health_follows_readiness_and_reflection_lists_services(make_settings: SettingsFactory) -> None:
    async def scenario() -> None:
        async with grpc_serving(make_settings(), start_core=False) as s:
            health = health_pb2_grpc.HealthStub(s.channel)
            before = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
            assert before.status == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await s.stub.GetModel(pb.GetModelRequest())
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            await s.core.start()
            await asyncio.sleep(0.6)  # past the health cache
            for service in ("", SERVICE_NAME):
                after = await health.Check(health_pb2.HealthCheckRequest(service=service))
                assert after.status == health_pb2.HealthCheckResponse.SERVING
            refl = reflection_pb2_grpc.ServerReflectionStub(s.channel)
            call: Any = refl.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
            names = {svc.name async for reply in call for svc in reply.list_services_response.service}
            assert {
                SERVICE_NAME,
                "grpc.health.v1.Health",
                "grpc.reflection.v1alpha.ServerReflection",
            } <= names

    run(scenario)


def test_a_deadline_that_runs_out_is_deadline_exceeded_never_invalid_argument(
    make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Deadlines of 1-10 ms run out at every point of a call; when the server sees none left after
    decoding, that is DEADLINE_EXCEEDED (it was INVALID_ARGUMENT 'timeout_s must be positive')."""
    rgb = np.random.default_rng(0).random((128, 128, 3), dtype=np.float32)
    request = pb.ReconstructRequest(image=raw_image(rgb))

    async def scenario() -> set[grpc.StatusCode]:
        codes: set[grpc.StatusCode] = set()
        async with grpc_serving(make_settings()) as s:
            for i in range(40):
                try:
                    await s.stub.Reconstruct(request, timeout=0.001 * (1 + i % 10))
                    codes.add(grpc.StatusCode.OK)
                except grpc.aio.AioRpcError as err:
                    codes.add(err.code())
            assert (
                s.core.metrics.registry.get_sample_value("mcga_requests_total", {"outcome": "invalid_input"})
                == 0
            )
        return codes

    with caplog.at_level(logging.INFO):
        assert run(scenario) <= {grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED}
    # When the deadline ends the call just before the status goes out, grpcio cannot send it: that
    # ends quietly, without the traceback grpcio logged at ERROR (about one call in 75 before).
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
