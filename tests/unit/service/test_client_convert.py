"""The clients' conversion helpers without a server: request bodies and parameters, REST answers and
errors, RawTensors both ways, chunk reassembly, gRPC errors."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from service.client.convert import (
    content_type,
    error_from_response,
    image_bytes,
    npy_bytes,
    reconstruct_params,
    result_from_response,
    server_timing,
)
from service.client.errors import ClientError
from service.client.grpc_client import client_error
from service.client.grpc_convert import (
    Reassembler,
    array_to_tensor,
    image_message,
    output_options,
    tensor_to_array,
    tta_name,
)
from service.codecs import encode_cube
from service.grpc.gen.mcga.v1 import reconstruction_pb2 as pb

WAVELENGTHS = tuple(400.0 + 10 * i for i in range(31))


def test_image_bytes_and_content_type(tmp_path: Path) -> None:
    arr = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    body = image_bytes(arr)
    assert content_type(body) == "application/x-npy"
    np.testing.assert_array_equal(np.load(io.BytesIO(body)), arr)
    path = tmp_path / "frame.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\nrest")
    assert image_bytes(path) == image_bytes(str(path)) == path.read_bytes()
    assert content_type(path.read_bytes()) == "image/png"
    assert content_type(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert content_type(b"II*\x00") == "image/tiff"
    assert content_type(b"GIF89a") == "application/octet-stream"


def test_reconstruct_params_send_only_what_differs() -> None:
    assert reconstruct_params() == {"format": "npy"}
    params = reconstruct_params(
        session_id="cam-1",
        tta_steps=0,
        fmt="tiff",
        dtype="float16",
        bands=(450, 650.5),
        region=(1, 2, 3, 4),
        color="srgb",
    )
    assert params == {
        "format": "tiff",
        "dtype": "float16",
        "color": "srgb",
        "session_id": "cam-1",
        "tta_steps": "0",
        "bands": "450-650.5",
        "region": "1,2,3,4",
    }
    assert reconstruct_params(bands=550, region="0,0,8,8")["bands"] == "550"


def _headers(**extra: str) -> dict[str, str]:
    return {
        "content-type": "application/x-npy",
        "x-wavelengths-nm": ",".join(f"{w:g}" for w in WAVELENGTHS),
        "x-model-version": "abc",
        "x-tta-outcome": "adapted",
        "x-session-id": "cam-1",
        "x-session-step": "3",
        "x-tta-entropy": "1.5",
        "x-reprojection-error": "0.01",
        "x-tiled": "false",
        "server-timing": "decode;dur=1.5, queue;dur=0.25, total;dur=10",
        **extra,
    }


def test_npy_answer_becomes_a_result() -> None:
    cube = np.random.default_rng(0).random((4, 5, 31), dtype=np.float32)
    result = result_from_response(npy_bytes(cube), _headers())
    np.testing.assert_array_equal(result.cube, cube)
    assert result.wavelengths_nm == WAVELENGTHS
    assert (result.model_version, result.tta, result.session_id, result.session_step) == (
        "abc",
        "adapted",
        "cam-1",
        3,
    )
    assert (result.entropy, result.reprojection_error, result.tiled) == (1.5, 0.01, False)
    assert result.timings_ms == {"decode": 1.5, "queue": 0.25, "total": 10.0}
    assert result.headers["x-model-version"] == "abc"


def test_tiff_answer_takes_wavelengths_from_the_file() -> None:
    cube = np.random.default_rng(1).random((3, 4, 31), dtype=np.float32)
    body = encode_cube(cube, WAVELENGTHS, fmt="tiff")
    result = result_from_response(body, _headers(**{"content-type": "image/tiff", "x-wavelengths-nm": ""}))
    np.testing.assert_array_equal(result.cube, cube)
    assert result.wavelengths_nm == WAVELENGTHS


def test_error_bodies_become_client_errors() -> None:
    body = json.dumps(
        {"error": "queue_full", "message": "queue full", "request_id": "r1", "depth": 64}
    ).encode()
    err = error_from_response(429, body, {"retry-after": "2"})
    assert (err.status, err.code, err.message, err.retry_after_s, err.request_id) == (
        429,
        "queue_full",
        "queue full",
        2.0,
        "r1",
    )
    assert err.details["depth"] == 64
    precise = json.dumps({"error": "queue_full", "message": "full", "retry_after_s": 0.22}).encode()
    assert error_from_response(429, precise, {"retry-after": "1"}).retry_after_s == 0.22  # not rounded up
    oip = error_from_response(
        404, json.dumps({"error": "no model x", "code": "model_not_found"}).encode(), {}
    )
    assert (oip.code, oip.message) == ("model_not_found", "no model x")
    plain = error_from_response(502, b"<html>bad gateway</html>", {})
    assert (plain.status, plain.code) == (502, "http_502") and "bad gateway" in plain.message
    assert server_timing(None) == {}


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float16", "float32"])
def test_raw_tensors_round_trip(dtype: str) -> None:
    arr = (np.random.default_rng(2).random((3, 4, 3)) * 100).astype(dtype)
    tensor = array_to_tensor(arr)
    assert (list(tensor.shape), tensor.dtype) == ([3, 4, 3], dtype)
    np.testing.assert_array_equal(tensor_to_array(tensor), arr)


def test_raw_tensor_narrowing_and_refusals() -> None:
    assert array_to_tensor(np.zeros((2, 2, 3))).dtype == "float32"  # float64 goes as float32
    big_endian = np.zeros((2, 2, 3), ">u2")
    assert tensor_to_array(array_to_tensor(big_endian)).dtype == np.dtype("<u2")
    with pytest.raises(ValueError, match="int32"):
        array_to_tensor(np.zeros((2, 2, 3), np.int32))
    assert image_message(b"\x89PNG").WhichOneof("payload") == "encoded"
    assert image_message(np.zeros((1, 1, 3), np.uint8), "srgb").color == "srgb"
    opts = output_options(bands=(450, 500), region=(1, 2, 3, 4), chunk_bytes=4096)
    assert (opts.band_min_nm, opts.band_max_nm, opts.region.width, opts.chunk_bytes) == (450, 500, 3, 4096)
    assert not output_options().HasField("region")


def test_reassembler_joins_chunks_in_offset_order() -> None:
    cube = np.random.default_rng(3).random((4, 4, 31), dtype=np.float32)
    data = cube.tobytes()
    chunks = [
        pb.CubeChunk(frame_index=7, offset=o, data=data[o : o + 1000]) for o in range(0, len(data), 1000)
    ]
    tensor = pb.RawTensor(shape=[4, 4, 31], dtype="float32")
    response = pb.ReconstructResponse(
        cube=pb.Cube(tensor=tensor, wavelengths_nm=WAVELENGTHS), tta=pb.TTA_OUTCOME_ADAPTED, session_step=2
    )
    assembler = Reassembler()
    for chunk in reversed(chunks):
        assert assembler.feed(pb.StreamResponse(chunk=chunk)) is None
    done = assembler.feed(
        pb.StreamResponse(result=pb.FrameResult(frame_index=7, session_id="s", response=response))
    )
    assert done is not None and done.ok and done.result is not None
    np.testing.assert_array_equal(done.result.cube, cube)
    assert (done.result.tta, done.result.session_step, done.result.session_id) == ("adapted", 2, "s")
    skipped = assembler.feed(pb.StreamResponse(skipped=pb.FrameSkipped(frame_index=8, reason="lag")))
    assert skipped is not None and (skipped.index, skipped.skipped, skipped.ok) == (8, "lag", False)
    failed = assembler.feed(
        pb.StreamResponse(error=pb.FrameError(frame_index=9, code="invalid_input", message="m"))
    )
    assert (
        failed is not None and isinstance(failed.error, ClientError) and failed.error.code == "invalid_input"
    )
    assert tta_name(pb.TTA_OUTCOME_SKIPPED_STORE_UNAVAILABLE) == "skipped_store_unavailable"


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, trailing: Any) -> None:
        self._code, self._details, self._trailing = code, details, trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:
        return self._trailing


def test_grpc_errors_become_client_errors() -> None:
    trailing = (("error-code", "queue_full"), ("retry-after-s", "0.500"))
    err = client_error(_FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full", trailing))
    assert (err.status, err.code, err.message, err.retry_after_s) == (
        "RESOURCE_EXHAUSTED",
        "queue_full",
        "queue full",
        0.5,
    )
    bare = client_error(_FakeRpcError(grpc.StatusCode.UNAVAILABLE, "", None))
    assert (bare.status, bare.code) == ("UNAVAILABLE", "unavailable")
