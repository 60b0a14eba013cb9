"""`mcga serve` as a real process with the production switches on (TLS on both edges from
certificate files, inference and admin API keys, Redis sessions): both edges answer over TLS with
keys only, and SIGTERM while frames are queued drains them: every accepted request is answered,
each session's last step is in Redis, the process exits 0."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import redis
import trustme

from service.client import ClientError, GrpcClient
from tests.support import free_port, redis_key_prefix, write_weights

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/0"
INFER, ADMIN = "e2e-infer-" + "k" * 24, "e2e-admin-" + "k" * 24
SESSIONS, PER_SESSION, LONE = 4, 5, 10


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    with redis_key_prefix("mcga-e2e-secure", REDIS_URL) as prefix:
        yield prefix


def stored_step(prefix: str, session: str) -> int | None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        blob = client.hget(prefix + session, "b")
    finally:
        client.close()
    if not isinstance(blob, bytes):
        return None
    return int(json.loads(blob[8 : 8 + int.from_bytes(blob[:8], "little")])["__metadata__"]["step"])


def queue_depth(client: httpx.Client) -> float:
    m = re.search(r"^mcga_queue_depth (\S+)$", client.get("/metrics").text, flags=re.M)
    return float(m.group(1)) if m else 0.0


Answer = tuple[str | None, int | None, int | None]  # session, status (None: never accepted), step


async def send_all(
    url: str, ca: Path, frames: list[tuple[str | None, bytes]], answered: list[Answer]
) -> list[Answer]:
    """Every frame at once (a session's frames queue on the server in arrival order); each answer is
    also appended to `answered` as it arrives."""
    headers = {"Authorization": f"Bearer {INFER}", "Content-Type": "application/x-npy"}
    limits = httpx.Limits(max_connections=len(frames))
    context = ssl.create_default_context(cafile=str(ca))
    async with httpx.AsyncClient(base_url=url, verify=context, timeout=60, limits=limits) as c:

        async def one(session: str | None, body: bytes) -> Answer:
            params = {"format": "npy", **({"session_id": session} if session else {})}
            try:
                r = await c.post("/reconstruct", content=body, params=params, headers=headers)
            except httpx.ConnectError:  # refused after SIGTERM: never accepted, and the client knows
                return session, None, None
            step = r.headers.get("X-Session-Step")
            answered.append((session, r.status_code, int(step) if step else None))
            return answered[-1]

        return list(await asyncio.gather(*(one(session, body) for session, body in frames)))


def test_tls_keys_and_sigterm_while_busy(tmp_path: Path, redis_prefix: str) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_file, cert_file, key_file = (tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    admin_file = tmp_path / "admin-keys"
    admin_file.write_text(f"# mounted secret\n{ADMIN}\n")
    http_port, grpc_port = free_port(), free_port()
    env = os.environ | {
        "MCGA_WEIGHTS": str(write_weights(tmp_path / "tiny.pt")),
        "REDIS_URL": REDIS_URL,
        "MCGA_REDIS_KEY_PREFIX": redis_prefix,
        "MCGA_TORCH_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MCGA_WARMUP_SIZE": "16",
        "MCGA_MAX_BATCH": "1",
        "MCGA_API_KEYS": INFER,
        "MCGA_ADMIN_API_KEYS_FILE": str(admin_file),
        "MCGA_TLS_CERT_FILE": str(cert_file),
        "MCGA_TLS_KEY_FILE": str(key_file),
    }
    log = tmp_path / "server.log"
    args = ["--host", "127.0.0.1", "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "model.cli", "serve", *args], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    url, target = f"https://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}"
    try:
        context = ssl.create_default_context(cafile=str(ca_file))
        with httpx.Client(base_url=url, verify=context, timeout=5) as probe:
            deadline = time.monotonic() + 90
            while True:
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                try:
                    if probe.get("/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            assert probe.post("/reconstruct", content=b"x").status_code == 401
            assert probe.delete("/sessions/x", headers={"X-API-Key": INFER}).status_code == 403
            assert probe.delete("/sessions/x", headers={"X-API-Key": ADMIN}).status_code == 200
            rgb = np.zeros((16, 16, 3), np.uint8)
            with GrpcClient(target, api_key=INFER, root_certificates=ca.cert_pem.bytes()) as g:
                assert g.reconstruct(rgb).cube.shape == (16, 16, 31)
            with (
                GrpcClient(target, root_certificates=ca.cert_pem.bytes()) as g,
                pytest.raises(ClientError) as e,
            ):
                g.model()
            assert e.value.status == grpc.StatusCode.UNAUTHENTICATED.name

            rng = np.random.default_rng(0)
            frames: list[tuple[str | None, bytes]] = []
            for i in range(LONE + SESSIONS * PER_SESSION):
                arr = rng.random((160, 160, 3), dtype=np.float32)
                body = _npy(arr)
                frames.append((None, body) if i < LONE else (f"cam-{(i - LONE) % SESSIONS}", body))

            async def load_then_sigterm() -> list[Answer]:
                answered: list[Answer] = []
                sending = asyncio.ensure_future(send_all(url, ca_file, frames, answered))
                # SIGTERM once every request is inside the server (queued, on the worker or answered)
                # and at least 3 wait: a request still in its TLS handshake or headers when uvicorn
                # stops would fail at the connection, which no drain can answer.
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    depth = await asyncio.to_thread(queue_depth, probe)
                    if depth >= 3 and depth + len(answered) + 1 >= len(frames):
                        break
                    await asyncio.sleep(0.02)
                proc.send_signal(signal.SIGTERM)
                return await sending

            answers = asyncio.run(asyncio.wait_for(load_then_sigterm(), 120))
        # Every request was inside the server when it was told to stop, and every one got its answer.
        statuses = [status for _, status, _ in answers]
        assert statuses == [200] * len(frames), statuses
        assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
        for i in range(SESSIONS):  # each session's answered steps are all in Redis
            steps = sorted(step or 0 for s, status, step in answers if s == f"cam-{i}" and status == 200)
            assert steps == list(range(1, len(steps) + 1))
            assert stored_step(redis_prefix, f"cam-{i}") == (len(steps) or None)
        text = log.read_text()
        assert "draining" in text and "stopped" in text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _npy(arr: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, arr)
    return out.getvalue()
