"""Overload and failure at the REST edge over the real engine: a full queue is a 429 with
Retry-After, a missed deadline a 504, an internal error a 500 that leaks nothing, and a client
that leaves has its queued frame dropped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest

from service.contracts import ReconstructRequest

T = TypeVar("T")
Encode = Callable[[str, np.ndarray], bytes]
ApiFactory = Callable[..., AbstractAsyncContextManager[Any]]


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), timeout=120))


def rgb8(height: int = 8, width: int = 8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)


def assert_error(r: httpx.Response, status: int, code: str, *words: str) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    body: dict[str, Any] = r.json()
    assert body["error"] == code and body["message"] and body["request_id"] == r.headers["X-Request-ID"]
    for word in words:
        assert word in body["message"], (word, body["message"])
    return body


async def _busy(a: Any, side: int = 240) -> asyncio.Task[Any]:
    """Keep the device busy with one big tiled frame sent straight to the core."""
    frame = np.random.default_rng(1).random((side, side, 3), dtype=np.float32)
    task = asyncio.create_task(a.core.reconstruct(ReconstructRequest(frame)))
    await asyncio.sleep(0.05)
    return task


def test_full_queue_is_429_with_retry_after(api: ApiFactory, encode: Encode) -> None:
    body = encode("png", rgb8(16, 16))

    async def scenario() -> None:
        async with api(max_batch=1, max_queue=1, max_wait_ms=0) as a:
            busy = await _busy(a)
            answers = await asyncio.gather(*(a.client.post("/reconstruct", content=body) for _ in range(4)))
            refused = [r for r in answers if r.status_code == 429]
            assert refused and len(refused) + sum(r.status_code == 200 for r in answers) == 4
            for r in refused:
                body_429 = assert_error(r, 429, "queue_full", "queue full")
                assert int(r.headers["Retry-After"]) >= 1 and body_429["retry_after_s"] > 0
            await busy

    run(scenario)


def test_deadline_is_504(api: ApiFactory, encode: Encode, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with api(request_timeout_s=0.001, max_wait_ms=20) as a:
            r = await a.client.post("/reconstruct", content=encode("png", rgb8()))
            assert_error(r, 504, "deadline_exceeded")

    with caplog.at_level(logging.INFO, logger="service.api.errors"):
        run(scenario)
    # One line at INFO, no traceback: a client choosing short deadlines cannot flood the log.
    (record,) = [r for r in caplog.records if r.name == "service.api.errors"]
    assert record.levelno == logging.INFO and not record.exc_info and "504" in record.getMessage()


def test_internal_error_is_a_500_that_leaks_nothing(
    api: ApiFactory, encode: Encode, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def explode(request: ReconstructRequest) -> None:
        raise RuntimeError("secret detail /etc/weights")

    async def scenario() -> None:
        async with api() as a:
            monkeypatch.setattr(a.core, "reconstruct", explode)
            r = await a.client.post("/reconstruct", content=encode("png", rgb8()))
            body = assert_error(r, 500, "internal", r.headers["X-Request-ID"])
            assert "secret" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
            assert set(body) == {"error", "message", "request_id"}
            metrics = (await a.client.get("/metrics")).text
            assert 'mcga_http_requests_total{method="POST",route="/reconstruct",status="500"} 1.0' in metrics

    with caplog.at_level(logging.ERROR, logger="service.api"):
        run(scenario)
    logged = [rec for rec in caplog.records if rec.exc_info]
    assert logged and "secret detail" in str(logged[0].exc_info[1])  # type: ignore[index]


def test_client_that_leaves_has_its_frame_dropped(api: ApiFactory, encode: Encode) -> None:
    """Raw ASGI, since httpx cannot hang up mid-request: the body arrives, then a disconnect."""
    body = encode("png", rgb8())
    sent: list[dict[str, Any]] = []

    async def scenario() -> None:
        async with api(max_batch=1, max_wait_ms=0) as a:
            busy = await _busy(a)
            messages: list[dict[str, Any]] = [
                {"type": "http.request", "body": body, "more_body": False},
                {"type": "http.disconnect"},
            ]

            async def receive() -> dict[str, Any]:
                if messages:
                    return messages.pop(0)
                await asyncio.Event().wait()  # nothing more ever arrives
                raise AssertionError("unreachable")

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "POST",
                "scheme": "http",
                "path": "/reconstruct",
                "raw_path": b"/reconstruct",
                "query_string": b"",
                "root_path": "",
                "headers": [(b"host", b"mcga.test"), (b"content-length", str(len(body)).encode())],
                "client": ("127.0.0.1", 1234),
                "server": ("mcga.test", 80),
            }
            await a.app(scope, receive, send)
            await busy
            cancelled = a.core.metrics.registry.get_sample_value(
                "mcga_requests_total", {"outcome": "cancelled"}
            )
            assert cancelled == 1

    run(scenario)
    assert sent[0]["status"] == 499
