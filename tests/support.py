"""Helpers shared by the integration and e2e tests: tiny GANet checkpoints and free ports."""

from __future__ import annotations

import os
import random
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
import torch

from model.checkpoint import save_checkpoint
from model.config import GANetConfig
from model.ganet import GANet

WAVELENGTHS = [400.0 + 10 * i for i in range(31)]


def tiny_ganet(seed: int = 0, consistent: bool = False) -> GANet:
    """A small random GANet; `consistent` adds the camera projection with `camera_response()`."""
    torch.manual_seed(seed)
    cfg = GANetConfig(
        latent_dim=16,
        moc_sizes=(32, 32),
        encoder_blocks=(1, 1),
        decoder_blocks=(1, 1),
        top_t=8,
        camera_consistency=consistent,
    )
    net = GANet(cfg).eval()
    if net.consistency is not None:
        net.consistency.set_response(torch.from_numpy(camera_response()).float())
    return net


def assert_same_function(
    got: torch.Tensor, want: torch.Tensor, params: list[torch.Tensor], rtol: float, atol: float
) -> None:
    """Two computations of one function agree in value (`rtol`, `atol`) and in the gradient of a
    squared sum with respect to every tensor in `params` (10x `rtol`, `atol` 1e-5)."""
    torch.testing.assert_close(got, want, rtol=rtol, atol=atol)
    g_got = torch.autograd.grad(got.square().sum(), params)
    g_want = torch.autograd.grad(want.square().sum(), params)
    for a, b in zip(g_got, g_want, strict=True):
        torch.testing.assert_close(a, b, rtol=10 * rtol, atol=1e-5)


def camera_response(seed: int = 0) -> np.ndarray:
    """A (31, 3) response whose rendering of a [0, 1] cube stays in [0, 1]."""
    r = np.random.default_rng(seed).random((31, 3))
    return r / r.sum(axis=0, keepdims=True)


def write_weights(path: Path, seed: int = 0, consistent: bool = False) -> Path:
    """A tiny, fast GANet checkpoint with the metadata the service needs (wavelengths, camera)."""
    meta: dict[str, Any] = {
        "wavelengths_nm": WAVELENGTHS,
        "camera": {"name": "test-camera", "response": camera_response().tolist()},
    }
    return save_checkpoint(path, tiny_ganet(seed, consistent), meta)


_HANDED_OUT: set[int] = set()


def _ephemeral_range() -> range:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)  # Linux's default


def free_port() -> int:
    """A loopback port that is free now, for a server started a moment later (often a process). Drawn
    below the kernel's ephemeral range, so the test's own outgoing connections (which take their
    source ports from that range) cannot take it in between; never the same port twice per process."""
    candidates = [p for p in range(20000, _ephemeral_range().start) if p not in _HANDED_OUT]
    draw = random.Random(os.getpid() ^ time.monotonic_ns())
    for port in draw.sample(candidates, min(200, len(candidates))):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket() as s:  # an unusual port range: the kernel's choice, as before
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_key_prefix(label: str, url: str = "redis://127.0.0.1:6379/0") -> Iterator[str]:
    """A fresh key prefix on the shared Redis, its keys removed afterwards; a missing Redis fails
    under CI (CI must provide it) and skips elsewhere."""
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not running at {url} (CI must provide it)")
        pytest.skip(f"Redis is not running at {url}")
    prefix = f"{label}:{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()
