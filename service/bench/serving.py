"""Serving overhead: one frame end to end through a real `mcga serve` against the bare model call.

On the same input (one H x W linear-RGB frame, NPY in) and the same torch threads, taking turns:
- `model`: the GANet forward alone in this process (`inference_mode`, batch 1);
- `rest_npy` / `rest_tiff`: `POST /reconstruct?format=npy|tiff` until the last body byte is read;
- `grpc_stream`: one frame of an open `StreamReconstruct` call (no adaptation), from sending the
  frame to its reassembled result; the next frame is sent only after that.
Target: REST NPY within 10% of the bare call at 512^2 on CPU (`service_over_model_512` <= 1.1).
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Callable, Iterator

import httpx
import numpy as np
import torch

from model.bench import interleaved
from model.checkpoint import load_checkpoint
from service.bench.common import (
    BenchWeights,
    SectionResult,
    at_most,
    median_ms,
    ratio,
    rgb_frame,
    synchronize,
)
from service.bench.config import BenchConfig
from service.bench.load import TIMEOUT_S, post_frame
from service.bench.servers import ServerPool, ServerSpec
from service.client import ClientError, GrpcClient
from service.client.convert import npy_bytes
from service.client.grpc_convert import FrameOutcome

OVERHEAD_TARGET = 1.10


class GatedStream:
    """One open gRPC stream sending a frame only when asked: `frame()` times one round trip."""

    def __init__(self, target: str) -> None:
        self._client = GrpcClient(target, timeout=None)
        self._frames: queue.Queue[np.ndarray | None] = queue.Queue()
        self._outcomes: Iterator[FrameOutcome] = self._client.stream(self._pull(), adapt=False)

    def _pull(self) -> Iterator[np.ndarray]:
        while (rgb := self._frames.get()) is not None:
            yield rgb

    def frame(self, rgb: np.ndarray) -> FrameOutcome:
        self._frames.put(rgb)
        outcome = next(self._outcomes)
        if outcome.result is None:
            raise RuntimeError(f"stream frame {outcome.index} failed: {outcome.error or outcome.skipped}")
        return outcome

    def close(self) -> None:
        self._frames.put(None)
        try:
            with contextlib.suppress(ClientError):  # a failed call has already raised from frame()
                for _ in self._outcomes:  # the call ends once the server has answered everything
                    pass
        finally:
            self._client.close()


def _bare(weights: BenchWeights, rgb: np.ndarray, device: str) -> Callable[[], None]:
    net = load_checkpoint(weights.path).model.eval().to(device)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous().to(device)

    def call() -> None:
        with torch.inference_mode():
            net(x)
        synchronize(device)

    return call


def run_serving(cfg: BenchConfig, weights: BenchWeights, pool: ServerPool) -> SectionResult:
    nominal, side = cfg.serving_size
    res = SectionResult("serving")
    server = pool.get(ServerSpec(max_batch=cfg.max_batch))
    rgb = rgb_frame(side, side)
    body = npy_bytes(rgb)
    stream = GatedStream(server.grpc)
    try:
        with httpx.Client(base_url=server.http, timeout=TIMEOUT_S) as http:
            calls: dict[str, Callable[[], object]] = {
                "model": _bare(weights, rgb, cfg.device),
                "rest_npy": lambda: post_frame(http, body, "npy"),
                "rest_tiff": lambda: post_frame(http, body, "tiff"),
                "grpc_stream": lambda: stream.frame(rgb),
            }
            times = interleaved(calls, cfg.warmup, cfg.repeats)
    finally:
        stream.close()
    ms = {name: median_ms(t) for name, t in times.items()}
    res.data = {
        "size": side,
        "nominal": nominal,
        "median_ms": ms,
        "input": "NPY body; output NPY or OME-TIFF (float32 cube)",
        "server": {"max_batch": cfg.max_batch, "metrics": True, "torch_threads": cfg.threads},
    }
    res.ratios = {
        f"service_over_model_{nominal}": ratio(ms["rest_npy"], ms["model"]),
        f"service_tiff_over_model_{nominal}": ratio(ms["rest_tiff"], ms["model"]),
        f"grpc_over_model_{nominal}": ratio(ms["grpc_stream"], ms["model"]),
    }
    applies = not cfg.quick and not cfg.device.startswith("cuda")
    key = f"service_over_model_{nominal}"
    res.checks.append(at_most(key, res.ratios[key], OVERHEAD_TARGET, applies))
    return res
