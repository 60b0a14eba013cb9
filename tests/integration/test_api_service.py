"""Sessions, one-shot adaptation, health, model info, metrics, admin reload, the lifespan and the
OpenAPI document, over the real app and engine (in-memory sessions)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np

from service.api import create_app
from service.settings import Settings

T = TypeVar("T")
Encode = Callable[[str, np.ndarray], bytes]
ApiFactory = Callable[..., AbstractAsyncContextManager[Any]]
SettingsFactory = Callable[..., Settings]


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), timeout=120))


def frame(encode: Encode, seed: int = 0) -> bytes:
    return encode("png", np.random.default_rng(seed).integers(0, 255, (16, 16, 3), dtype=np.uint8))


def test_session_flow_and_reset(api: ApiFactory, encode: Encode) -> None:
    """Decided: DELETE resets (idempotent, `deleted` says whether there was state); GET is then a 404
    until the session's next frame, which starts again at step 1."""

    async def scenario() -> None:
        async with api() as a:
            c = a.client
            steps = []
            for seed in (1, 2):
                r = await c.post(
                    "/reconstruct", content=frame(encode, seed), headers={"X-Session-ID": "cam-1"}
                )
                assert r.status_code == 200 and r.headers["X-TTA-Outcome"] == "adapted"
                assert r.headers["X-Session-ID"] == "cam-1" and float(r.headers["X-TTA-Entropy"]) >= 0
                steps.append(int(r.headers["X-Session-Step"]))
            assert steps == [1, 2]
            info = (await c.get("/sessions/cam-1")).json()
            assert (info["id"], info["steps"], info["version"]) == ("cam-1", 2, 2)
            assert info["current_model"] and info["model_version"] == a.core.model_info.version
            by_query = await c.post("/reconstruct?session_id=cam-1&tta_steps=0", content=frame(encode, 3))
            assert by_query.headers["X-TTA-Outcome"] == "none" and by_query.headers["X-Session-Step"] == "2"
            assert (await c.delete("/sessions/cam-1")).json() == {"id": "cam-1", "deleted": True}
            gone = await c.get("/sessions/cam-1")
            assert gone.status_code == 404 and gone.json()["error"] == "session_not_found"
            assert (await c.delete("/sessions/cam-1")).json()["deleted"] is False
            again = await c.post("/reconstruct", content=frame(encode), headers={"X-Session-ID": "cam-1"})
            assert again.headers["X-Session-Step"] == "1"
            bad = await c.get("/sessions/" + "x" * 200)
            assert bad.status_code == 422 and "A-Z a-z 0-9" in bad.json()["message"]

    run(scenario)


def test_one_shot_adaptation_without_a_session(api: ApiFactory, encode: Encode) -> None:
    async def scenario() -> None:
        async with api() as a:
            plain = await a.client.post("/reconstruct?format=npy", content=frame(encode))
            adapted = await a.client.post("/reconstruct?format=npy&tta_steps=2", content=frame(encode))
            assert plain.headers["X-TTA-Outcome"] == "none" and adapted.headers["X-TTA-Outcome"] == "adapted"
            assert "X-TTA-Entropy" in adapted.headers and "X-Session-Step" not in adapted.headers
            assert plain.content != adapted.content
            again = await a.client.post("/reconstruct?format=npy", content=frame(encode))
            assert again.content == plain.content  # one-shot: nothing was kept

    run(scenario)


def test_health_model_metrics_and_reload(api: ApiFactory, encode: Encode, other_weights: Path) -> None:
    async def scenario() -> None:
        async with api() as a:
            c = a.client
            assert (await c.get("/healthz")).json() == {"status": "ok"}
            head = await c.head("/healthz")
            assert head.status_code == 200 and head.content == b""  # load balancers that probe with HEAD
            assert (await c.head("/readyz")).status_code == 200
            ready = await c.get("/readyz")
            assert ready.status_code == 200 and ready.json() == {"ready": True, "model": True, "store": None}
            model = (await c.get("/v1/model")).json()
            assert model["bands"] == len(model["wavelengths_nm"]) == 31 and model["name"] == "mcga"
            await c.post("/reconstruct", content=frame(encode), headers={"X-Session-ID": "m"})
            await c.get("/sessions/nobody")
            assert (await c.request("BREW", "/reconstruct")).status_code == 405  # any token is a method
            assert (await c.get("/openapi.json")).status_code == 200
            text = (await c.get("/metrics")).text
            assert "BREW" not in text  # clients cannot mint label values
            for name in (
                "mcga_queue_depth",
                "mcga_batch_size_bucket",
                "mcga_inference_duration_seconds_bucket",
                'mcga_requests_total{outcome="ok"}',
                'mcga_tta_steps_total{outcome="adapted"}',
                "mcga_model_info{",
                'mcga_http_requests_total{method="POST",route="/reconstruct",status="200"} 1.0',
                'mcga_http_requests_total{method="GET",route="/sessions/{session_id}",status="404"} 1.0',
                # GET and HEAD
                'mcga_http_request_duration_seconds_count{route="/readyz",status_class="2xx"} 2.0',
                'mcga_http_requests_total{method="other",route="/reconstruct",status="405"} 1.0',
                'mcga_http_requests_total{method="GET",route="/openapi.json",status="200"} 1.0',
                'mcga_http_request_duration_seconds_count{route="/reconstruct",status_class="4xx"} 1.0',
            ):
                assert name in text, name
            reloaded = await c.post("/admin/reload", json={"weights": str(other_weights)})
            assert reloaded.status_code == 200 and reloaded.json()["version"] != model["version"]
            assert (await c.get("/v1/model")).json()["version"] == reloaded.json()["version"]
            failed = await c.post("/admin/reload", json={"weights": str(other_weights.with_name("nope.pt"))})
            assert failed.status_code == 422 and failed.json()["error"] == "model_load_failed"
            assert (await c.post("/admin/reload")).json()["version"] == model["version"]  # configured weights

    run(scenario)


def test_lifespan_owns_a_core_when_none_is_given(make_settings: SettingsFactory, encode: Encode) -> None:
    app = create_app(make_settings())

    async def scenario() -> None:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mcga.test") as c:
            starting = await c.get("/readyz")
            assert starting.status_code == 503 and starting.json()["ready"] is False
            assert (await c.post("/reconstruct", content=frame(encode))).json()["error"] == "not_ready"
            async with app.router.lifespan_context(app):
                assert (await c.get("/readyz")).status_code == 200
                assert (await c.post("/reconstruct", content=frame(encode))).status_code == 200
                assert "mcga_queue_depth" in (await c.get("/metrics")).text
            assert (await c.get("/readyz")).status_code == 503

    run(scenario)


def test_openapi_documents_bodies_headers_and_statuses(api: ApiFactory) -> None:
    async def scenario() -> dict[str, Any]:
        async with api() as a:
            spec: dict[str, Any] = (await a.client.get("/openapi.json")).json()
            return spec

    spec = run(scenario)
    post = spec["paths"]["/reconstruct"]["post"]
    assert {"image/png", "application/x-npy", "multipart/form-data"} <= set(post["requestBody"]["content"])
    assert {"200", "406", "413", "415", "422", "429", "500", "503", "504"} <= set(post["responses"])
    assert {"X-Cube-Shape", "X-Wavelengths-Nm", "Server-Timing"} <= set(post["responses"]["200"]["headers"])
    assert "Retry-After" in post["responses"]["429"]["headers"]
    assert {p["name"] for p in post["parameters"]} >= {"format", "session_id", "tta_steps", "bands", "region"}
    infer = spec["paths"]["/v2/models/{model_name}/infer"]["post"]
    assert "example" in infer["requestBody"]["content"]["application/json"]["schema"]
    for path in ("/healthz", "/readyz", "/v1/model", "/metrics", "/sessions/{session_id}", "/admin/reload"):
        assert path in spec["paths"], path
    assert "503" in spec["paths"]["/v2/models/{model_name}/ready"]["get"]["responses"]
    assert {"get", "head"} <= set(spec["paths"]["/healthz"]) and {"get", "head"} <= set(
        spec["paths"]["/readyz"]
    )
