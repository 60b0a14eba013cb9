"""Fixtures for the service's integration tests: tiny GANet checkpoints, settings, real Redis.

Redis tests use the server on 127.0.0.1:6379 (each test under its own key prefix, removed after);
tests that must stop Redis start their own `redis-server` on a free port.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import imagecodecs
import numpy as np
import pytest
import redis
import tifffile
import torch
from fastapi import FastAPI
from PIL import Image

from service.api import create_app
from service.core import InferenceCore
from service.settings import Settings
from tests.support import free_port, write_weights

SHARED_REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    """Engines here run torch on one thread (fast on a shared CPU); leave other tests as found."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_weights(tmp_path_factory.mktemp("weights") / "tiny.pt", seed=0)


@pytest.fixture(scope="session")
def other_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_weights(tmp_path_factory.mktemp("weights") / "other.pt", seed=1)


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(tiny_weights: Path) -> SettingsFactory:
    """Settings for a small, fast engine; keyword arguments override."""

    def make(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "weights": tiny_weights,
            "warmup_size": 16,
            "torch_threads": 1,
            "max_wait_ms": 2.0,
            "tile_size": 64,
            "tile_overlap": 8,
            "redis_url": None,
            # A loaded 2-core CI machine can take longer than the 0.25 s default for one Redis op;
            # tests that want a timeout to fire pass a short one themselves.
            "redis_op_timeout_s": 2.0,
            "redis_connect_timeout_s": 2.0,
        }
        return Settings(**(base | overrides))

    return make


def rgb_frames(n: int, height: int = 16, width: int = 16, seed: int = 0) -> list[np.ndarray]:
    """`n` random linear-RGB frames."""
    rng = np.random.default_rng(seed)
    return [rng.random((height, width, 3), dtype=np.float32) for _ in range(n)]


@pytest.fixture
def frames() -> Callable[..., list[np.ndarray]]:
    return rgb_frames


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must provide it)")
    pytest.skip(reason)


@pytest.fixture
def shared_redis() -> Iterator[tuple[str, str]]:
    """(url, key prefix) on the shared Redis; the prefix's keys are deleted afterwards."""
    client = redis.Redis.from_url(SHARED_REDIS)
    try:
        client.ping()
    except redis.ConnectionError:
        _unavailable("Redis is not running on 127.0.0.1:6379")
    prefix = f"mcga-test:{uuid.uuid4().hex}:"
    yield SHARED_REDIS, prefix
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


class RedisProcess:
    """A private `redis-server` (no persistence) that a test may stop and start again."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port, self.workdir = port, workdir
        self.url = f"redis://127.0.0.1:{port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    if shutil.which("redis-server") is None:
        _unavailable("redis-server is not installed")
    server = RedisProcess(free_port(), tmp_path)
    server.start()
    yield server
    server.stop()


# ---- the REST edge -------------------------------------------------------------------------------


@dataclass
class Api:
    """One app over a started core, and an httpx client talking to it in-process."""

    app: FastAPI
    core: InferenceCore
    client: httpx.AsyncClient


ApiFactory = Callable[..., AbstractAsyncContextManager[Api]]


@pytest.fixture
def api(make_settings: SettingsFactory) -> ApiFactory:
    """`async with api(**settings_overrides) as a:` a started core behind `create_app` (caller-owned)."""

    @asynccontextmanager
    async def serve(**overrides: Any) -> AsyncIterator[Api]:
        settings = make_settings(**overrides)
        core = InferenceCore.build(settings)
        await core.start()
        try:
            app = create_app(settings, core)
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://mcga.test") as client:
                yield Api(app, core, client)
        finally:
            await core.stop()

    return serve


def encode_image(kind: str, pixels: np.ndarray) -> bytes:
    """`pixels` (H, W, C) as a `png`, `jpeg`, `tiff` or `npy` file."""
    if kind == "png":
        return bytes(imagecodecs.png_encode(pixels))
    if kind == "jpeg":
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, format="JPEG", quality=95)
        return out.getvalue()
    if kind == "tiff":
        out = io.BytesIO()
        tifffile.imwrite(out, pixels, photometric="rgb" if pixels.shape[-1] == 3 else None)
        return out.getvalue()
    if kind == "npy":
        out = io.BytesIO()
        np.save(out, pixels)
        return out.getvalue()
    raise ValueError(kind)


@pytest.fixture
def encode() -> Callable[[str, np.ndarray], bytes]:
    return encode_image
