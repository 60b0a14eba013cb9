"""Helpers shared by the integration and e2e tests: tiny GANet checkpoints and free ports."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.checkpoint import save_checkpoint
from model.config import GANetConfig
from model.ganet import GANet

WAVELENGTHS = [400.0 + 10 * i for i in range(31)]


def tiny_ganet(seed: int = 0) -> GANet:
    torch.manual_seed(seed)
    cfg = GANetConfig(
        latent_dim=16, moc_sizes=(32, 32), encoder_blocks=(1, 1), decoder_blocks=(1, 1), top_t=8
    )
    return GANet(cfg).eval()


def camera_response(seed: int = 0) -> np.ndarray:
    """A (31, 3) response whose rendering of a [0, 1] cube stays in [0, 1]."""
    r = np.random.default_rng(seed).random((31, 3))
    return r / r.sum(axis=0, keepdims=True)


def write_weights(path: Path, seed: int = 0) -> Path:
    """A tiny, fast GANet checkpoint with the metadata the service needs (wavelengths, camera)."""
    meta: dict[str, Any] = {
        "wavelengths_nm": WAVELENGTHS,
        "camera": {"name": "test-camera", "response": camera_response().tolist()},
    }
    return save_checkpoint(path, tiny_ganet(seed), meta)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
