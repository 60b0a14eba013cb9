"""Bad requests at the REST edge: every bad input, option and limit gets its status and a JSON body
`{"error", "message", "request_id"}` (overload and failures: test_api_overload.py)."""

from __future__ import annotations

import asyncio
import gzip
import io
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest

T = TypeVar("T")
Encode = Callable[[str, np.ndarray], bytes]
ApiFactory = Callable[..., AbstractAsyncContextManager[Any]]


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), timeout=120))


def rgb8(height: int = 8, width: int = 8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)


def npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=allow_pickle)
    return out.getvalue()


def png_bomb(side: int) -> bytes:
    """A tiny PNG whose header declares side x side RGB pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\x00" * (1 + 3 * side) * 64)
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def assert_error(r: httpx.Response, status: int, code: str, *words: str) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/json"
    body: dict[str, Any] = r.json()
    assert body["error"] == code and isinstance(body["message"], str) and body["message"]
    assert body["request_id"] == r.headers["X-Request-ID"]
    for word in words:
        assert word in body["message"], (word, body["message"])
    return body


def bad_bodies(encode: Encode) -> list[tuple[str, bytes, int, str, str]]:
    rgba = np.dstack([rgb8(), rgb8()[..., :1]])
    nan = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    nan[2, 2, 1] = np.nan
    inf = nan.copy()
    inf[2, 2, 1] = np.inf
    return [
        ("undecodable PNG", encode("png", rgb8())[:60], 422, "invalid_input", "truncated or corrupt"),
        ("not an image", b"GIF89a" + b"\x00" * 32, 415, "unsupported_media_type", "GIF"),
        ("RGBA channels", encode("png", rgba), 422, "invalid_input", "3 channels"),
        ("greyscale npy", npy(np.zeros((8, 8), np.uint8)), 422, "invalid_input", "(H, W, 3)"),
        ("zero height", npy(np.zeros((0, 8, 3), np.uint8)), 422, "invalid_input", "at least 1"),
        ("oversized", png_bomb(300), 413, "payload_too_large", "300x300"),
        ("NaN", npy(nan), 422, "invalid_input", "NaN"),
        ("inf", npy(inf), 422, "invalid_input", "infinite"),
        (
            "pickled npy",
            npy(np.array([{"a": 1}], dtype=object), allow_pickle=True),
            422,
            "invalid_input",
            "pickled",
        ),
        ("empty", b"", 422, "invalid_input", "empty body"),
        ("floats above 1", npy(np.full((4, 4, 3), 7.0, np.float32)), 422, "invalid_input", "[0, 1]"),
    ]


def test_bad_inputs_get_4xx_json(api: ApiFactory, encode: Encode) -> None:
    cases = bad_bodies(encode)

    async def scenario() -> None:
        async with api(max_image_pixels=128 * 128) as a:
            for name, body, status, code, word in cases:
                r = await a.client.post("/reconstruct", content=body)
                assert_error(r, status, code, word), name
            ok = await a.client.post("/reconstruct", content=encode("png", rgb8()))
            assert ok.status_code == 200

    run(scenario)


def test_compressed_bodies_are_refused_not_guessed(api: ApiFactory, encode: Encode) -> None:
    """Content-Encoding other than identity is a 415 on both routes, whether or not the body really
    is compressed (an uncompressed body labelled gzip was served, a gzip one refused as 'gzip data')."""
    png = encode("png", rgb8())

    async def scenario() -> None:
        async with api() as a:
            gz = {"Content-Encoding": "gzip"}
            for body in (gzip.compress(png), png):
                r = await a.client.post("/reconstruct", content=body, headers=gz)
                assert_error(r, 415, "unsupported_media_type", "Content-Encoding")
                r = await a.client.post("/v2/models/mcga/infer", content=body, headers=gz)
                assert r.status_code == 415 and "Content-Encoding" in r.json()["error"]  # OIP-shaped
            r = await a.client.post("/reconstruct", content=png, headers={"Content-Encoding": "identity"})
            assert r.status_code == 200

    run(scenario)


@pytest.mark.parametrize(
    ("query", "headers", "word"),
    [
        ("tta_steps=99", {}, "0..8"),
        ("tta_steps=-1", {}, "0..8"),
        ("session_id=has%20space", {}, "A-Z a-z 0-9"),
        ("session_id=a", {"X-Session-ID": "b"}, "disagree"),
        ("bands=red", {}, "wavelength range"),
        ("bands=800-900", {}, "no band"),
        ("region=0,0,99,99", {}, "does not lie inside"),
        ("region=1,2", {}, "x,y,w,h"),
        ("dtype=float16", {}, "format=npy only"),
        ("dtype=int8", {}, "dtype"),
        ("format=npy&compression=zstd", {}, "format=tiff only"),
        ("format=bmp", {}, "unknown output format"),
        ("color=hsv", {}, "color"),
        ("timeout_s=0", {}, "timeout_s"),
    ],
)
def test_bad_options_get_422(
    api: ApiFactory, encode: Encode, query: str, headers: dict[str, str], word: str
) -> None:
    async def scenario() -> None:
        async with api() as a:
            r = await a.client.post(f"/reconstruct?{query}", content=encode("png", rgb8()), headers=headers)
            assert_error(r, 422, "invalid_input", word)

    run(scenario)


def test_accept_nothing_producible_is_406_and_unknown_routes_are_json(
    api: ApiFactory, encode: Encode
) -> None:
    async def scenario() -> None:
        async with api() as a:
            r = await a.client.post(
                "/reconstruct", content=encode("png", rgb8()), headers={"Accept": "text/html"}
            )
            assert_error(r, 406, "not_acceptable", "image/tiff")
            assert_error(await a.client.get("/nowhere"), 404, "not_found")
            assert_error(await a.client.get("/reconstruct"), 405, "method_not_allowed")

    run(scenario)


def test_malformed_multipart_bodies_get_422(api: ApiFactory, encode: Encode) -> None:
    png = encode("png", rgb8())

    async def scenario() -> None:
        async with api() as a:
            c = a.client
            field = await c.post("/reconstruct", files={"file": ("x.png", png)}, data={"format": "npy"})
            assert_error(field, 422, "invalid_input", "query parameters")
            empty = b"--b--\r\n"
            none = await c.post(
                "/reconstruct", content=empty, headers={"Content-Type": "multipart/form-data; boundary=b"}
            )
            assert_error(none, 422, "invalid_input", "no file part")
            two = await c.post("/reconstruct", files=[("a", ("a.png", png)), ("b", ("b.png", png))])
            assert_error(two, 422, "invalid_input", "malformed multipart")
            broken = await c.post(
                "/reconstruct", content=b"--x\r\nnonsense", headers={"Content-Type": "multipart/form-data"}
            )
            assert_error(broken, 422, "invalid_input", "malformed multipart")

    run(scenario)


def test_body_over_the_limit_is_413_before_it_is_read(api: ApiFactory) -> None:
    reads = 0

    async def streamed() -> AsyncIterator[bytes]:
        nonlocal reads
        for _ in range(100):
            reads += 1
            yield b"\x93NUMPY" + b"\x00" * 1018

    async def scenario() -> None:
        async with api(max_body_bytes=4096) as a:
            declared = await a.client.post("/reconstruct", content=b"\x00" * 5000)
            assert_error(declared, 413, "payload_too_large", "4096")
            chunked = await a.client.post("/reconstruct", content=streamed())
            assert_error(chunked, 413, "payload_too_large", "4096")
            assert reads < 10  # stopped at the limit, not after the whole body
            multipart = await a.client.post("/reconstruct", files={"file": ("x.npy", b"\x00" * 5000)})
            assert_error(multipart, 413, "payload_too_large")
            v2 = await a.client.post("/v2/models/mcga/infer", content=b" " * 5000)
            assert v2.status_code == 413 and v2.json()["code"] == "payload_too_large"
            reload = await a.client.post("/admin/reload", content=b"{" + b" " * 5000 + b"}")
            assert_error(reload, 413, "payload_too_large")

    run(scenario)
