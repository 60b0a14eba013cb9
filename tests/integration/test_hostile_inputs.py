"""Every entry of the hostile-input catalogue over REST, gRPC unary and one gRPC stream, against one
in-process server on loopback sockets: each gets its documented status and error code, a valid
request right after it still succeeds, and no 5xx / INTERNAL is ever counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc
import httpx
import pytest

from service.grpc.gen.mcga.v1 import reconstruction_pb2 as pb
from service.settings import Settings
from tests.integration.hostile_inputs import HOSTILE_LIMITS, Hostile, catalogue, png, rgb8
from tests.integration.serving import Both, serve_both

SettingsFactory = Callable[..., Settings]
CASES = catalogue()


def test_the_catalogue_is_broad() -> None:
    assert len(CASES) >= 25 and len({c.name for c in CASES}) == len(CASES)
    assert sum(c.grpc is not None for c in CASES) >= 25
    assert {c.http for c in CASES} == {200, 413, 415, 422}


async def _rest(client: httpx.AsyncClient, case: Hostile) -> None:
    headers = {"Content-Type": case.content_type} if case.content_type else {}
    r = await client.post("/reconstruct", content=case.body, params=case.params, headers=headers)
    assert r.status_code == case.http, (case.name, r.status_code, r.text[:300])
    if case.http != 200:
        body = r.json()
        assert body["error"] == case.code and body["message"], case.name
        assert body["request_id"] == r.headers["X-Request-ID"], case.name
        assert "Traceback" not in r.text, case.name
    ok = await client.post("/reconstruct", content=png(rgb8()), params={"format": "npy"})
    assert ok.status_code == 200, (f"after {case.name}", ok.text[:300])


async def _unary(stub: object, case: Hostile) -> None:
    request = pb.ReconstructRequest(image=pb.Image(encoded=case.body), **case.fields)
    call = stub.Reconstruct  # type: ignore[attr-defined]
    if case.grpc == "OK":
        reply = await call(request)
        assert reply.cube.tensor.shape[2] == 31, case.name
    else:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(request)
        err = info.value
        assert err.code().name == case.grpc, (case.name, err.code(), err.details())
        trailing = {k: v for k, v in err.trailing_metadata() or ()}
        expected = case.code if case.grpc_error is None else case.grpc_error
        assert trailing.get("error-code", "") == expected, (case.name, trailing)
        assert "Traceback" not in (err.details() or ""), case.name
    ok = await call(pb.ReconstructRequest(image=pb.Image(encoded=png(rgb8()))))
    assert ok.cube.tensor.shape[2] == 31, f"after {case.name}"


async def _stream(stub: object, cases: list[Hostile]) -> None:
    """One stream: each hostile frame followed by a valid one; bad frames are FrameErrors only."""

    async def requests() -> AsyncIterator[pb.StreamRequest]:
        yield pb.StreamRequest(config=pb.StreamConfig(session_id="hostile-stream"))
        for i, case in enumerate(cases):
            yield pb.StreamRequest(frame=pb.Frame(index=2 * i, image=pb.Image(encoded=case.body)))
            yield pb.StreamRequest(frame=pb.Frame(index=2 * i + 1, image=pb.Image(encoded=png(rgb8()))))

    answers: dict[int, str] = {}
    async for message in stub.StreamReconstruct(requests()):  # type: ignore[attr-defined]
        kind = message.WhichOneof("message")
        if kind == "error":
            answers[message.error.frame_index] = message.error.code
        elif kind == "result":
            answers[message.result.frame_index] = ""
    for i, case in enumerate(cases):
        assert answers.get(2 * i) == case.code, (case.name, answers.get(2 * i))
        assert answers.get(2 * i + 1) == "", f"valid frame after {case.name}"


def _no_server_errors(both: Both) -> None:
    registry = both.core.metrics.registry
    for metric in registry.collect():
        for s in metric.samples:
            if s.name == "mcga_http_requests_total" and s.value:
                assert not s.labels["status"].startswith("5"), s
            if s.name == "mcga_grpc_requests_total" and s.value:
                assert s.labels["code"] not in ("INTERNAL", "UNKNOWN", "DATA_LOSS"), s


def test_hostile_inputs_over_rest_and_grpc(make_settings: SettingsFactory) -> None:
    settings = make_settings(**HOSTILE_LIMITS)
    unary = [c for c in CASES if c.grpc is not None]
    streamed = [c for c in unary if not c.fields and c.grpc == "INVALID_ARGUMENT"]

    async def scenario() -> None:
        async with serve_both(settings) as both:
            async with httpx.AsyncClient(base_url=both.rest_url, timeout=30) as client:
                for case in CASES:
                    await _rest(client, case)
            channel = both.channel()
            try:
                stub = both.stub(channel)
                for case in unary:
                    await _unary(stub, case)
                await _stream(stub, streamed)
            finally:
                await channel.close()
            _no_server_errors(both)
            assert both.core.engine.queue_depth == 0

    asyncio.run(asyncio.wait_for(scenario(), timeout=120))
