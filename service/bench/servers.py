"""Real `mcga serve` processes for the benchmarks, on free ports, started together and reused.

Every server gets the same explicit settings (weights, torch threads, device, tiling, in-memory
sessions) and differs only by its `ServerSpec`. The environment's `MCGA_*` and `REDIS_URL` are left
out so a developer's shell cannot skew a run. The bound ports come from the server's start-up line.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from service.bench.common import ROOT
from service.bench.config import BenchConfig

# `mcga serve` with uvicorn's per-request access log silenced: the "metrics and logging off" server.
_QUIET = (
    "import logging, sys; from model.cli import main; "
    "logging.getLogger('uvicorn.access').setLevel(logging.WARNING); sys.exit(main(sys.argv[1:]))"
)
_BOUND = re.compile(r"REST on (https?://\S+), gRPC on (\S+)")
START_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class ServerSpec:
    max_batch: int = 8
    metrics: bool = True  # Prometheus metrics and the per-request access log

    @property
    def name(self) -> str:
        return f"batch{self.max_batch}-{'metrics' if self.metrics else 'nometrics'}"


class BenchServer:
    """One `mcga serve` subprocess; `start`, then `wait_ready`, then `stop`."""

    def __init__(self, spec: ServerSpec, weights: Path, cfg: BenchConfig, log_dir: Path) -> None:
        self.spec, self.weights, self.cfg = spec, weights, cfg
        self.log = log_dir / f"serve-{spec.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = self.grpc = ""

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("MCGA_") and k != "REDIS_URL"}
        cfg, threads = self.cfg, str(self.cfg.threads)
        return base | {
            "MCGA_WEIGHTS": str(self.weights),
            "MCGA_DEVICE": cfg.device,
            "MCGA_TORCH_THREADS": threads,
            "OMP_NUM_THREADS": threads,
            "MCGA_MAX_BATCH": str(self.spec.max_batch),
            "MCGA_MAX_WAIT_MS": str(cfg.max_wait_ms),
            "MCGA_MAX_QUEUE": "1024",  # 64 closed-loop clients never see a 429
            "MCGA_REQUEST_TIMEOUT_S": "600",
            "MCGA_WARMUP_SIZE": str(cfg.server_warmup_size),
            "MCGA_TILE_SIZE": str(cfg.tile_size),
            "MCGA_TILE_OVERLAP": str(cfg.tile_overlap),
            "MCGA_METRICS_ENABLED": "true" if self.spec.metrics else "false",
        }

    def start(self) -> None:
        code = ["-m", "model.cli"] if self.spec.metrics else ["-c", _QUIET]
        ports = ["--host", "127.0.0.1", "--http-port", "0", "--grpc-port", "0"]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, *code, "serve", *ports], cwd=ROOT, env=self.env(), stdout=out, stderr=out
            )

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        assert self.proc is not None, "start() first"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server {self.spec.name} exited {self.proc.returncode}:\n{self.tail()}")
            if not self.http and (found := _BOUND.search(self.tail())):
                self.http, self.grpc = found.group(1), found.group(2)
            if self.http:
                try:
                    if httpx.get(f"{self.http}/readyz", timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server {self.spec.name} not ready within {timeout_s:.0f} s:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ServerPool:
    """The servers of one run, by spec: started together (their start-ups overlap), stopped together."""

    def __init__(self, weights: Path, cfg: BenchConfig, log_dir: Path) -> None:
        self.weights, self.cfg, self.log_dir = weights, cfg, log_dir
        self._servers: dict[ServerSpec, BenchServer] = {}

    def __enter__(self) -> ServerPool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self, *specs: ServerSpec) -> None:
        fresh = [
            BenchServer(s, self.weights, self.cfg, self.log_dir) for s in specs if s not in self._servers
        ]
        for server in fresh:
            server.start()
            self._servers[server.spec] = server
        for server in fresh:
            server.wait_ready()

    def get(self, spec: ServerSpec) -> BenchServer:
        if spec not in self._servers:
            self.start(spec)
        return self._servers[spec]

    def close(self) -> None:
        for server in self._servers.values():
            server.stop()
        self._servers.clear()
