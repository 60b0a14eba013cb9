"""`POST /reconstruct` over the real app and engine: every input format, raw and multipart, both
output formats read back, every response header, and the cube options."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
import tifffile

from service.codecs import read_cube_tiff

T = TypeVar("T")
Encode = Callable[[str, np.ndarray], bytes]
CODECS = {
    "zlib": tifffile.COMPRESSION.ADOBE_DEFLATE,
    "zstd": tifffile.COMPRESSION.ZSTD,
    "lzw": tifffile.COMPRESSION.LZW,
}
WAVELENGTHS = [400.0 + 10 * i for i in range(31)]
HEADERS = (
    "X-Cube-Shape",
    "X-Wavelengths-Nm",
    "X-Model-Version",
    "X-TTA-Outcome",
    "X-Reprojection-Error",
    "X-Input-Color",
    "X-Tiled",
    "Server-Timing",
    "X-Request-ID",
)


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), timeout=120))


def pixels(dtype: type = np.uint8, height: int = 16, width: int = 20, seed: int = 0) -> np.ndarray:
    top = np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, top, (height, width, 3), dtype=dtype, endpoint=True)


def npy_cube(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-npy"
    cube: np.ndarray = np.load(io.BytesIO(response.content), allow_pickle=False)
    return cube


@pytest.mark.parametrize(
    ("kind", "dtype", "multipart"),
    [
        ("png", np.uint8, False),
        ("png", np.uint16, True),
        ("tiff", np.uint8, True),
        ("tiff", np.uint16, False),
        ("npy", np.uint8, False),
        ("npy", np.float32, True),
        ("jpeg", np.uint8, False),
        ("jpeg", np.uint8, True),
    ],
)
def test_every_input_format_raw_and_multipart(
    api: Any, encode: Encode, kind: str, dtype: type, multipart: bool
) -> None:
    image = pixels(np.uint8 if dtype is np.float32 else dtype)
    if dtype is np.float32:
        image = (image / 255.0).astype(np.float32)
    body = encode(kind, image)

    async def scenario() -> None:
        async with api() as a:
            if multipart:
                r = await a.client.post("/reconstruct?format=npy", files={"file": (f"frame.{kind}", body)})
            else:
                r = await a.client.post("/reconstruct", content=body, headers={"Accept": "application/x-npy"})
            cube = npy_cube(r)
            assert cube.shape == (16, 20, 31) and cube.dtype == np.float32 and np.isfinite(cube).all()
            assert r.headers["X-Cube-Shape"] == "16,20,31"

    run(scenario)


def test_same_pixels_give_the_same_cube_whatever_the_container(api: Any, encode: Encode) -> None:
    """The input contract scales by bit depth only: PNG, TIFF and .npy of one uint8 frame agree."""
    image = pixels(seed=3)

    async def scenario() -> None:
        async with api() as a:
            cubes = [
                npy_cube(await a.client.post("/reconstruct?format=npy", content=encode(kind, image)))
                for kind in ("png", "tiff", "npy")
            ]
            np.testing.assert_array_equal(cubes[0], cubes[1])
            np.testing.assert_array_equal(cubes[0], cubes[2])

    run(scenario)


def test_tiff_output_carries_wavelengths_and_matches_npy(api: Any, encode: Encode) -> None:
    body = encode("png", pixels(seed=1))

    async def scenario() -> None:
        async with api() as a:
            r = await a.client.post("/reconstruct", content=body, headers={"Content-Type": "image/png"})
            assert r.status_code == 200 and r.headers["content-type"] == "image/tiff"
            assert r.headers["content-disposition"] == 'attachment; filename="cube.ome.tif"'
            assert int(r.headers["content-length"]) == len(r.content)
            read = read_cube_tiff(r.content)
            assert read.wavelengths_nm == tuple(WAVELENGTHS)
            assert read.metadata["model_version"] == r.headers["X-Model-Version"]
            assert read.metadata["input_color"] == "linear"
            with tifffile.TiffFile(io.BytesIO(r.content)) as tif:  # what napari/Fiji users see
                assert tif.is_ome and tif.series[0].axes == "CYX"
                assert 'EmissionWavelength="400.0"' in (tif.ome_metadata or "")
            npy = npy_cube(await a.client.post("/reconstruct?format=npy", content=body))
            np.testing.assert_allclose(read.cube, npy, rtol=1e-5, atol=1e-6)

    run(scenario)


def test_every_response_header(api: Any, encode: Encode) -> None:
    async def scenario() -> None:
        async with api() as a:
            r = await a.client.post(
                "/reconstruct?format=npy",
                content=encode("png", pixels()),
                headers={"X-Request-ID": "trace-42"},
            )
            assert r.status_code == 200
            for name in HEADERS:
                assert name in r.headers, name
            version = (await a.client.get("/v1/model")).json()["version"]
            assert r.headers["X-Model-Version"] == version
            assert r.headers["X-Wavelengths-Nm"] == ",".join(f"{w:g}" for w in WAVELENGTHS)
            assert (r.headers["X-TTA-Outcome"], r.headers["X-Input-Color"], r.headers["X-Tiled"]) == (
                "none",
                "linear",
                "false",
            )
            assert r.headers["X-Request-ID"] == "trace-42"
            assert float(r.headers["X-Reprojection-Error"]) >= 0
            assert "X-TTA-Entropy" not in r.headers and "X-Session-Step" not in r.headers
            timing = dict(part.strip().split(";dur=") for part in r.headers["Server-Timing"].split(","))
            assert set(timing) == {"decode", "queue", "inference", "tta", "encode", "total"}
            assert all(float(v) >= 0 for v in timing.values())
            generated = await a.client.post("/reconstruct", content=encode("png", pixels()))
            assert len(generated.headers["X-Request-ID"]) == 32  # none offered: a fresh one
            odd = await a.client.post("/reconstruct", content=b"", headers={"X-Request-ID": "not {plain}"})
            assert (
                len(odd.headers["X-Request-ID"]) == 32
                and odd.json()["request_id"] == odd.headers["X-Request-ID"]
            )

    run(scenario)


def test_band_range_region_dtype_and_compression(api: Any, encode: Encode) -> None:
    body = encode("png", pixels(seed=2))

    async def scenario() -> None:
        async with api() as a:
            full = npy_cube(await a.client.post("/reconstruct?format=npy", content=body))
            r = await a.client.post("/reconstruct?format=npy&bands=450-500&region=2,3,5,4", content=body)
            part = npy_cube(r)
            assert part.shape == (4, 5, 6) and r.headers["X-Cube-Shape"] == "4,5,6"
            assert r.headers["X-Wavelengths-Nm"] == "450,460,470,480,490,500"
            np.testing.assert_allclose(part, full[3:7, 2:7, 5:11], rtol=1e-5, atol=1e-6)
            one = await a.client.post("/reconstruct?format=npy&bands=550", content=body)
            assert npy_cube(one).shape == (16, 20, 1) and one.headers["X-Wavelengths-Nm"] == "550"
            half = npy_cube(await a.client.post("/reconstruct?format=npy&dtype=float16", content=body))
            assert half.dtype == np.float16
            np.testing.assert_allclose(half, full, atol=1e-3)
            for compression in ("zlib", "zstd", "lzw"):
                r = await a.client.post(f"/reconstruct?compression={compression}&bands=400-420", content=body)
                assert r.status_code == 200, r.text
                with tifffile.TiffFile(io.BytesIO(r.content)) as tif:
                    assert tif.pages[0].compression == CODECS[compression]
                cube = read_cube_tiff(r.content)
                assert cube.wavelengths_nm == (400.0, 410.0, 420.0)
                np.testing.assert_allclose(cube.cube, full[:, :, :3], rtol=1e-5, atol=1e-6)

    run(scenario)


def test_srgb_contract_accept_negotiation_tiling_and_streamed_body(api: Any, encode: Encode) -> None:
    body = encode("png", pixels(seed=4))

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    async def scenario() -> None:
        async with api() as a:
            linear = npy_cube(await a.client.post("/reconstruct?format=npy", content=body))
            r = await a.client.post("/reconstruct?format=npy&color=srgb", content=body)
            assert r.headers["X-Input-Color"] == "srgb" and not np.allclose(npy_cube(r), linear)
            for accept, kind in (
                ("image/tiff", "image/tiff"),
                ("*/*", "image/tiff"),
                ("application/x-npy", "application/x-npy"),
            ):
                r = await a.client.post("/reconstruct", content=body, headers={"Accept": accept})
                assert r.headers["content-type"] == kind
            big = await a.client.post(
                "/reconstruct?format=npy", content=encode("png", pixels(height=80, width=72))
            )
            assert big.headers["X-Tiled"] == "true" and npy_cube(big).shape == (80, 72, 31)
            streamed = await a.client.post("/reconstruct?format=npy", content=chunked())
            np.testing.assert_allclose(npy_cube(streamed), linear, rtol=1e-5, atol=1e-6)

    run(scenario)
