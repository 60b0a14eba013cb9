"""`mcga serve` as a real process on free ports (tiny checkpoint, real Redis under a unique prefix):
readiness, REST round trips in NPY and TIFF, a gRPC stream whose session lands in Redis, the main
REST errors, and SIGTERM draining an open stream before exiting 0."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis
from PIL import Image

from service.client import Client, ClientError, GrpcClient, stream_frames
from tests.support import free_port, redis_key_prefix, write_weights

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_weights(tmp_path_factory.mktemp("weights") / "tiny.pt")


@pytest.fixture(scope="module")
def redis_prefix() -> Iterator[str]:
    with redis_key_prefix("mcga-e2e", REDIS_URL) as prefix:
        yield prefix


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    http: str
    grpc: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start_server(weights: Path, prefix: str, log: Path) -> Server:
    http_port, grpc_port = free_port(), free_port()
    env = os.environ | {
        "MCGA_WEIGHTS": str(weights),
        "REDIS_URL": REDIS_URL,
        "MCGA_REDIS_KEY_PREFIX": prefix,
        "MCGA_TORCH_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MCGA_WARMUP_SIZE": "16",
        "MCGA_MAX_BODY_BYTES": str(64 << 10),
    }
    args = ["--host", "127.0.0.1", "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "model.cli", "serve", *args], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    server = Server(proc, f"http://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}", log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited with {proc.returncode}:\n{server.output()}"
        try:
            if httpx.get(f"{server.http}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"server not ready within 90 s:\n{server.output()}")


def stop(server: Server) -> int:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
    try:
        return server.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        raise


@pytest.fixture(scope="module")
def server(weights: Path, redis_prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(weights, redis_prefix, tmp_path_factory.mktemp("serve") / "server.log")
    yield s
    stop(s)


def png(arr: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(arr).save(out, "PNG")
    return out.getvalue()


def test_rest_round_trip_in_npy_and_tiff(server: Server) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    with Client(server.http) as client:
        assert client.health() and client.ready()["ready"] is True
        model = client.model()
        as_npy = client.reconstruct(png(rgb), fmt="npy")
        as_tiff = client.reconstruct(rgb, fmt="tiff", bands=(450, 650))
    assert as_npy.cube.shape == (24, 20, 31) and as_npy.cube.dtype == np.float32
    assert list(as_npy.wavelengths_nm) == model["wavelengths_nm"]
    assert as_npy.model_version == model["version"] and as_npy.tta == "none"
    assert as_tiff.cube.shape == (24, 20, 21) and as_tiff.wavelengths_nm[0] == 450.0
    np.testing.assert_allclose(as_tiff.cube, as_npy.cube[:, :, 5:26], atol=1e-5)


def test_grpc_stream_session_lands_in_redis(server: Server, redis_prefix: str) -> None:
    session, n = f"e2e-{uuid.uuid4().hex[:8]}", 4
    frames = list(np.random.default_rng(1).random((n, 16, 16, 3), dtype=np.float32))
    got = list(stream_frames(server.grpc, frames, session_id=session))
    assert [o.index for o in got] == list(range(n))
    assert [o.result.session_step for o in got if o.result] == list(range(1, n + 1))
    blob = redis.Redis.from_url(REDIS_URL).hget(prefix_key := redis_prefix + session, "b")
    assert isinstance(blob, bytes), f"no session at {prefix_key}"
    header = json.loads(blob[8 : 8 + int.from_bytes(blob[:8], "little")])
    assert int(header["__metadata__"]["step"]) == n
    with Client(server.http) as client:
        assert client.session(session)["steps"] == n
        with GrpcClient(server.grpc) as grpc_client:
            one = grpc_client.reconstruct(frames[0], session_id=session)
        assert one.session_step == n + 1
        assert client.delete_session(session)
        with pytest.raises(ClientError) as info:
            client.session(session)
        assert (info.value.status, info.value.code) == (404, "session_not_found")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"GIF89a not accepted here", 415, "unsupported_media_type"),
        (png(np.zeros((8, 8, 4), np.uint8)), 422, "invalid_input"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100 << 10), 413, "payload_too_large"),
    ],
)
def test_rest_errors(server: Server, body: bytes, status: int, code: str) -> None:
    with Client(server.http) as client, pytest.raises(ClientError) as info:
        client.reconstruct(body)
    assert (info.value.status, info.value.code) == (status, code)
    assert info.value.message and "Traceback" not in info.value.message


def test_sigterm_drains_an_open_stream_and_exits_0(weights: Path, redis_prefix: str, tmp_path: Path) -> None:
    server = start_server(weights, redis_prefix, tmp_path / "server.log")
    try:
        answered: list[int] = []
        two_answered = threading.Event()

        def frames() -> Iterator[np.ndarray]:  # runs on the client's request thread
            for i in range(1000):
                if i == 2:  # once the first two frames are answered: a slow server has read them
                    assert two_answered.wait(60)
                    server.proc.send_signal(signal.SIGTERM)
                yield np.zeros((16, 16, 3), np.uint8)
                time.sleep(0.05)

        def consume() -> None:
            for outcome in stream_frames(server.grpc, frames(), session_id="e2e-drain"):
                answered.append(outcome.index)
                if len(answered) >= 2:
                    two_answered.set()

        with pytest.raises(ClientError) as info:
            consume()
        assert info.value.status == "UNAVAILABLE" and "shutting down" in info.value.message
        assert answered == list(range(len(answered))) and len(answered) >= 2
        start = time.monotonic()
        assert server.proc.wait(timeout=15) == 0, server.output()
        assert time.monotonic() - start < 10
        assert "stopped" in server.output()
    finally:
        if server.proc.poll() is None:
            server.proc.kill()


def readme_examples() -> list[tuple[str, str]]:
    """(language, code) of every README block fenced as ```bash example / ```python example."""
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```(bash|python) example\n(.*?)```", text, flags=re.S)


def test_readme_examples_run_as_written(server: Server, tmp_path: Path) -> None:
    examples = readme_examples()
    assert len(examples) >= 3
    http_port, grpc_port = server.http.rsplit(":", 1)[1], server.grpc.rsplit(":", 1)[1]
    env = os.environ | {
        "PYTHONPATH": str(ROOT),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    for lang, code in examples:
        code = code.replace("127.0.0.1:8000", f"127.0.0.1:{http_port}").replace(
            "127.0.0.1:50051", f"127.0.0.1:{grpc_port}"
        )
        cmd = ["bash", "-euo", "pipefail", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"README {lang} example failed:\n{code}\n{proc.stdout}\n{proc.stderr}"
        assert proc.stdout.strip(), f"README {lang} example printed nothing:\n{code}"
