"""The Open Inference Protocol (KServe v2) surface: health, metadata, JSON and binary inference, and
its error shape, over the real app and engine."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import numpy as np
import pytest

from service.api import oip_tensors

T = TypeVar("T")
ApiFactory = Callable[..., AbstractAsyncContextManager[Any]]


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), timeout=120))


def rgb(height: int = 8, width: int = 12) -> np.ndarray:
    return np.random.default_rng(5).random((height, width, 3), dtype=np.float32)


def infer_body(x: np.ndarray, datatype: str = "FP32", **parameters: Any) -> dict[str, Any]:
    return {
        "id": "req-1",
        "parameters": parameters,
        "inputs": [{"name": "rgb", "shape": list(x.shape), "datatype": datatype, "data": x.ravel().tolist()}],
        "outputs": [{"name": "hsi"}],
    }


def test_health_and_metadata(api: ApiFactory) -> None:
    async def scenario() -> None:
        async with api() as a:
            c = a.client
            version = a.core.model_info.version
            assert (await c.get("/v2/health/live")).json() == {"live": True}
            assert (await c.get("/v2/health/ready")).json() == {"ready": True}
            server = (await c.get("/v2")).json()
            assert server["name"] == "mcga" and "binary_tensor_data" in server["extensions"]
            meta = (await c.get("/v2/models/mcga")).json()
            assert meta["name"] == "mcga" and meta["versions"] == [version]
            tensor = meta["inputs"][0]
            assert (tensor["name"], tensor["datatype"], tensor["shape"]) == ("rgb", "FP32", [-1, -1, 3])
            assert "parameters" not in meta  # null fields are left out
            assert meta["outputs"][0]["shape"] == [-1, -1, 31]
            assert (await c.get(f"/v2/models/mcga/versions/{version}")).status_code == 200
            assert (await c.get("/v2/models/mcga/ready")).json() == {"name": "mcga", "ready": True}
            for path in ("/v2/models/other", "/v2/models/mcga/versions/0", "/v2/models/other/ready"):
                missing = await c.get(path)
                assert missing.status_code == 404, path
                assert missing.json()["code"] == "model_not_found" and "no model" in missing.json()["error"]

    run(scenario)


def test_json_inference_matches_reconstruct(api: ApiFactory) -> None:
    x = rgb()
    npy = io.BytesIO()
    np.save(npy, x)

    async def scenario() -> None:
        async with api() as a:
            r = await a.client.post("/v2/models/mcga/infer", json=infer_body(x))
            assert r.status_code == 200, r.text
            body = r.json()
            assert (body["model_name"], body["model_version"], body["id"]) == (
                "mcga",
                a.core.model_info.version,
                "req-1",
            )
            out = body["outputs"][0]
            assert (out["name"], out["datatype"], out["shape"]) == ("hsi", "FP32", [8, 12, 31])
            cube = np.asarray(out["data"], np.float32).reshape(out["shape"])
            assert body["parameters"]["tta_outcome"] == "none"
            assert body["parameters"]["wavelengths_nm"].startswith("400,410")
            assert r.headers["X-Cube-Shape"] == "8,12,31"
            rest = await a.client.post("/reconstruct?format=npy", content=npy.getvalue())
            np.testing.assert_allclose(cube, np.load(io.BytesIO(rest.content)), rtol=1e-5, atol=1e-6)
            u8 = (x * 255).round().astype(np.uint8)
            batched = infer_body(u8, "UINT8")
            batched["inputs"][0]["shape"] = [1, 8, 12, 3]
            r8 = await a.client.post(
                f"/v2/models/mcga/versions/{a.core.model_info.version}/infer", json=batched
            )
            assert r8.status_code == 200 and r8.json()["outputs"][0]["shape"] == [8, 12, 31]

    run(scenario)


def test_binary_tensor_extension_and_sessions(api: ApiFactory) -> None:
    x = rgb(6, 6)

    async def scenario() -> None:
        async with api() as a:
            header = {
                "parameters": {"session_id": "oip-1", "binary_data_output": True},
                "inputs": [
                    {
                        "name": "rgb",
                        "shape": [6, 6, 3],
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": x.nbytes},
                    }
                ],
            }
            head = json.dumps(header).encode()
            for step in (1, 2):
                r = await a.client.post(
                    "/v2/models/mcga/infer",
                    content=head + x.astype("<f4").tobytes(),
                    headers={"Inference-Header-Content-Length": str(len(head))},
                )
                assert r.status_code == 200, r.text
                n = int(r.headers["Inference-Header-Content-Length"])
                meta = json.loads(r.content[:n])
                out = meta["outputs"][0]
                assert out["parameters"]["binary_data_size"] == 6 * 6 * 31 * 4 == len(r.content) - n
                cube = np.frombuffer(r.content[n:], "<f4").reshape(out["shape"])
                assert cube.shape == (6, 6, 31) and np.isfinite(cube).all()
                assert (
                    meta["parameters"]["session_step"] == step
                    and meta["parameters"]["tta_outcome"] == "adapted"
                )
            assert (await a.client.get("/sessions/oip-1")).json()["steps"] == 2

    run(scenario)


def test_errors_are_oip_shaped(api: ApiFactory) -> None:
    x = rgb(4, 4)
    cases: list[tuple[dict[str, Any] | bytes, int, str]] = [
        ({**infer_body(x), "inputs": [{**infer_body(x)["inputs"][0], "name": "image"}]}, 422, "named 'rgb'"),
        ({**infer_body(x), "inputs": [{**infer_body(x)["inputs"][0], "shape": [4, 4, 4]}]}, 422, "[H, W, 3]"),
        ({**infer_body(x), "inputs": [{**infer_body(x)["inputs"][0], "shape": [4, 5, 3]}]}, 422, "holds 48"),
        (
            {**infer_body(x), "inputs": [{**infer_body(x)["inputs"][0], "datatype": "BYTES"}]},
            422,
            "not accepted",
        ),
        (infer_body(np.full((4, 4, 3), 300), "UINT8"), 422, "0..255"),
        (infer_body(np.full((4, 4, 3), 0.5), "UINT8"), 422, "integers"),
        (infer_body(x + 2), 422, "[0, 1]"),
        (infer_body(x, session_id="bad id"), 422, "A-Z a-z"),
        (infer_body(x, tta_steps=50), 422, "0..8"),
        (infer_body(x, tta_steps="2"), 422, "wrong type"),
        ({**infer_body(x), "outputs": [{"name": "rgb"}]}, 422, "unknown output"),
        (b"{not json", 422, "invalid inference request"),
    ]

    async def scenario() -> None:
        async with api() as a:
            for body, status, word in cases:
                if isinstance(body, bytes):
                    r = await a.client.post("/v2/models/mcga/infer", content=body)
                else:
                    r = await a.client.post("/v2/models/mcga/infer", json=body)
                assert r.status_code == status, (word, r.text)
                assert word in r.json()["error"], (word, r.json())
                assert r.json()["request_id"] == r.headers["X-Request-ID"]

    run(scenario)


def test_malformed_binary_tensors_get_422(api: ApiFactory) -> None:
    """A byte count that no whole number of values fills, and a header length that only looks like
    digits (`"²".isdigit()` is True), are the client's errors, not the server's."""

    def request(datatype: str, sent: int) -> tuple[bytes, int]:
        inputs = [
            {
                "name": "rgb",
                "shape": [2, 2, 3],
                "datatype": datatype,
                "parameters": {"binary_data_size": sent},
            }
        ]
        head = json.dumps({"inputs": inputs}).encode()
        return head + bytes(sent), len(head)

    async def scenario() -> None:
        async with api() as a:
            for datatype, sent, word in (("FP32", 13, "holds 13 bytes"), ("UINT16", 23, "take 24")):
                body, n = request(datatype, sent)
                r = await a.client.post(
                    "/v2/models/mcga/infer", content=body, headers={"Inference-Header-Content-Length": str(n)}
                )
                assert r.status_code == 422 and word in r.json()["error"], r.text
            body, _ = request("FP32", 48)
            r = await a.client.post(
                "/v2/models/mcga/infer", content=body, headers={"Inference-Header-Content-Length": b"\xb2"}
            )
            assert r.status_code == 422 and "byte count" in r.json()["error"], r.text

    run(scenario)


def test_a_json_part_too_large_to_parse_is_413_before_parsing(
    api: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JSON numbers take ~10x their text once parsed: a part above MAX_JSON_BYTES is refused unread
    (a 240 MB body of numbers grew the server by 2.4 GB before its 422)."""
    monkeypatch.setattr(oip_tensors, "MAX_JSON_BYTES", 1000)
    body = infer_body(rgb(16, 16))  # about 6 kB of JSON

    async def scenario() -> None:
        async with api() as a:
            r = await a.client.post("/v2/models/mcga/infer", json=body)
            assert r.status_code == 413 and "binary extension" in r.json()["error"], r.text

    run(scenario)
