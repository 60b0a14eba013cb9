"""The gRPC edge's pure parts: output options, cubes into messages (whole or chunked), the message
limit, and the error -> status mapping."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from service.client.grpc_convert import output_options
from service.contracts import ReconstructResult, Timings, TTAOutcome
from service.errors import InvalidInputError, PayloadTooLargeError, QueueFullError, SessionNotFoundError
from service.grpc.convert import OutputSpec, frame_messages, output_spec, unary_response
from service.grpc.gen.mcga.v1 import reconstruction_pb2 as pb
from service.grpc.status import grpc_metrics, status_of

WAVELENGTHS = tuple(400.0 + 10 * i for i in range(31))


def result(h: int = 6, w: int = 5) -> ReconstructResult:
    cube = np.random.default_rng(0).random((h, w, 31), dtype=np.float32)
    return ReconstructResult(
        cube, WAVELENGTHS, "v1", TTAOutcome.ADAPTED, 4, 1.25, 0.02, False, Timings(0.001, 0.01, 0.005, 0.02)
    )


def test_output_options_are_validated() -> None:
    spec = output_spec(pb.OutputOptions(), WAVELENGTHS)
    assert spec == OutputSpec()
    spec = output_spec(
        pb.OutputOptions(dtype="float16", band_min_nm=500, region=pb.Region(x=1, y=1, width=2, height=3)),
        WAVELENGTHS,
    )
    assert (spec.dtype, spec.band_min_nm, spec.band_max_nm, spec.region) == (
        "float16",
        500,
        None,
        (1, 1, 2, 3),
    )
    for options, match in [
        (pb.OutputOptions(dtype="int8"), "dtype"),
        (pb.OutputOptions(band_min_nm=705, band_max_nm=708), "no band"),
        (pb.OutputOptions(band_min_nm=600, band_max_nm=500), "empty"),
        (pb.OutputOptions(band_min_nm=float("nan")), "positive"),
        (pb.OutputOptions(region=pb.Region(x=1, y=1, width=0, height=3)), "empty"),
        (pb.OutputOptions(chunk_bytes=100), "chunk_bytes"),
    ]:
        with pytest.raises(InvalidInputError, match=match):
            output_spec(options, WAVELENGTHS)


def test_unary_response_carries_the_cut_cube_and_facts() -> None:
    r = result()
    spec = OutputSpec(dtype="float16", band_min_nm=450, band_max_nm=460, region=(1, 2, 3, 4))
    msg = unary_response(r, spec, 1 << 20)
    cube = np.frombuffer(msg.cube.tensor.data, "<f2").reshape(tuple(msg.cube.tensor.shape))
    assert cube.shape == (4, 3, 2) and msg.cube.tensor.dtype == "float16"
    np.testing.assert_allclose(cube, r.cube[2:6, 1:4, 5:7], atol=1e-3)
    assert list(msg.cube.wavelengths_nm) == [450.0, 460.0]
    assert (msg.tta, msg.session_step, msg.model_version) == (pb.TTA_OUTCOME_ADAPTED, 4, "v1")
    assert msg.timings.total_ms == pytest.approx(20.0)
    with pytest.raises(InvalidInputError, match="does not lie inside"):
        unary_response(r, OutputSpec(region=(4, 0, 3, 3)), 1 << 20)


def test_cubes_above_the_message_limit_are_refused_with_advice() -> None:
    big = result(128, 128)  # 2 MB
    with pytest.raises(PayloadTooLargeError, match="StreamReconstruct"):
        unary_response(big, OutputSpec(), 2_000_000)
    assert unary_response(big, OutputSpec(dtype="float16"), 2_000_000).cube.tensor.dtype == "float16"


def test_frame_messages_chunk_large_cubes() -> None:
    r = result()
    nbytes = r.cube.nbytes  # 3720
    whole = frame_messages(r, OutputSpec(), 3, "s", chunk_bytes=nbytes)
    assert [m.WhichOneof("message") for m in whole] == ["result"]
    assert whole[0].result.response.cube.tensor.data == r.cube.tobytes()
    parts = frame_messages(r, OutputSpec(), 3, "s", chunk_bytes=1024)
    chunks = [m.chunk for m in parts[:-1]]
    assert [c.offset for c in chunks] == [0, 1024, 2048, 3072] and all(c.frame_index == 3 for c in chunks)
    assert b"".join(c.data for c in chunks) == r.cube.tobytes()
    last = parts[-1].result
    assert (last.frame_index, last.session_id, last.response.cube.tensor.data) == (3, "s", b"")
    assert list(last.response.cube.tensor.shape) == [6, 5, 31]


def test_errors_map_to_status_codes() -> None:
    code, details, md = status_of(QueueFullError("queue full", retry_after_s=1.5))
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED and details == "queue full"
    assert dict(md) == {"error-code": "queue_full", "retry-after-s": "1.500"}
    assert status_of(SessionNotFoundError("no session"))[0] is grpc.StatusCode.NOT_FOUND
    assert status_of(PayloadTooLargeError("big"))[0] is grpc.StatusCode.INVALID_ARGUMENT
    registry = CollectorRegistry()
    assert grpc_metrics(registry) is grpc_metrics(registry)  # registered once per registry


def test_output_options_take_what_the_rest_client_takes() -> None:
    for bands, expected in (
        (550, (550, 550)),
        ("550", (550, 550)),
        ("450-550", (450, 550)),
        ((450, 550), (450, 550)),
    ):
        options = output_options(bands=bands)
        assert (options.band_min_nm, options.band_max_nm) == expected
    for region in ("2,3,8,5", (2, 3, 8, 5)):
        r = output_options(region=region).region
        assert (r.x, r.y, r.width, r.height) == (2, 3, 8, 5)
    for bad in ({"bands": "red"}, {"region": "1,2"}, {"region": (0, 0, -1, 4)}, {"chunk_bytes": -1}):
        with pytest.raises(ValueError):
            output_options(**bad)
