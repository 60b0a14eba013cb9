"""The compose stack's processes, run directly with its files (no Docker engine here): Redis with the
compose command (persistence on), `mcga <command>` with the compose environment, and a real Prometheus
with deploy/prometheus/prometheus.yml and alerts.yml (the service discovery swapped for the local
target, intervals shortened to one second). Traffic covers REST, gRPC, overload (429) and a Redis
outage; then every dashboard query and every alert expression runs against Prometheus' HTTP API:
each parses, each panel returns data, and the alerts for overload and Redis loss become active.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import redis
import yaml

from service.client import GrpcClient, stream_frames
from tests.integration.deploy_helpers import (
    ALERTS,
    DASHBOARD,
    PROMETHEUS_CONFIG,
    McgaProcess,
    Prometheus,
    RedisServer,
    dashboard_targets,
    environment_of,
    finite_values,
    grafana_to_promql,
    healthcheck_url,
    load_compose,
    npy,
    require_tool,
    tail,
)

RATE_INTERVAL = "1m"  # $__rate_interval: the whole test fits in it
CUDA_ONLY = {"mcga_device_memory_bytes"}  # no samples on a CPU replica (its HELP says so)


@dataclass
class Stack:
    redis: RedisServer
    mcga: McgaProcess
    prometheus: Prometheus
    compose: dict[str, Any]


def prometheus_config(workdir: Path, mcga_port: int, prometheus_port: int) -> Path:
    """deploy/prometheus/prometheus.yml as written, but for local processes: static targets instead
    of Docker's DNS, one-second intervals, the rule files by absolute path."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROMETHEUS_CONFIG.parent / f) for f in config["rule_files"]]
    for job in config["scrape_configs"]:
        job |= {"scrape_interval": "1s", "scrape_timeout": "1s"}
        for key in ("dns_sd_configs", "static_configs"):
            job.pop(key, None)
        port = mcga_port if job["job_name"] == "mcga" else prometheus_port
        job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def stack(tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    for tool in ("redis-server", "prometheus"):
        require_tool(tool)
    compose = load_compose()
    services = compose["services"]
    workdir = tmp_path_factory.mktemp("stack")
    redis_args = services["redis"]["command"][1:]  # after `redis-server`
    env = environment_of(services["mcga"]) | {
        "MCGA_WEIGHTS": str(tiny_weights),  # the image bakes the bundled weights in; a tiny model here
        "MCGA_WARMUP_SIZE": "16",
        "MCGA_MAX_QUEUE": "2",  # so that a handful of clients overloads it
    }
    prom_args = [
        a
        for a in services["prometheus"]["command"]
        if not a.startswith(("--config.file=", "--storage.tsdb.path="))
    ]
    redis_server = RedisServer(redis_args, workdir)
    mcga = McgaProcess(
        env | {"REDIS_URL": redis_server.url}, workdir / "mcga.log", services["mcga"]["command"]
    )
    prometheus = Prometheus(Path(), workdir, prom_args)
    prometheus.config = prometheus_config(workdir, mcga.http_port, prometheus.port)
    try:
        redis_server.start()
        mcga.start()
        prometheus.start()
        mcga.wait_ready()
        yield Stack(redis_server, mcga, prometheus, compose)
    finally:
        mcga.stop()
        prometheus.stop()
        redis_server.stop()


def frame(seed: int, side: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).random((side, side, 3), dtype=np.float32)


def post(client: httpx.Client, body: bytes, session: str | None = None) -> httpx.Response:
    headers = {"X-Session-ID": session} if session else {}
    return client.post("/reconstruct", params={"format": "npy"}, content=body, headers=headers)


def normal_traffic(stack: Stack, session: str, seconds: float) -> int:
    """REST (with and without a session, a bad body, model and session reads) and gRPC (unary and
    a stream) for `seconds`; the number of session frames sent."""
    sent = 0
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=stack.mcga.http, timeout=30) as client, GrpcClient(stack.mcga.grpc) as grpc:
        while time.monotonic() < deadline:
            r = post(client, npy(frame(sent)), session)
            assert r.status_code == 200 and r.headers["x-tta-outcome"] == "adapted", r.text
            sent += 1
            assert post(client, npy(frame(1000 + sent))).status_code == 200
            assert client.post("/reconstruct", content=b"GIF89a no").status_code == 415
            assert client.get("/v1/model").status_code == 200
            assert client.get(f"/sessions/{session}").json()["steps"] == sent
            assert grpc.reconstruct(frame(2000 + sent)).cube.shape == (16, 16, 31)
            outs = list(
                stream_frames(
                    stack.mcga.grpc, [frame(3000 + sent + i) for i in range(2)], session_id="s-grpc"
                )
            )
            assert [o.index for o in outs] == [0, 1]
            time.sleep(0.1)
    return sent


def overload(stack: Stack, seconds: float, clients: int = 8) -> dict[int, int]:
    """`clients` threads posting 48x48 frames back to back: more than MCGA_MAX_QUEUE=2 wait."""
    counts: dict[int, int] = {}
    lock = threading.Lock()
    body = npy(frame(7, side=48))
    deadline = time.monotonic() + seconds

    def hammer() -> None:
        with httpx.Client(base_url=stack.mcga.http, timeout=30) as client:
            while time.monotonic() < deadline:
                status = post(client, body).status_code
                with lock:
                    counts[status] = counts.get(status, 0) + 1
                if status == 429:
                    time.sleep(0.01)

    threads = [threading.Thread(target=hammer) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 30)
    return counts


def wait_for_alerts(prometheus: Prometheus, names: set[str], timeout: float = 15) -> dict[str, set[str]]:
    deadline = time.monotonic() + timeout
    active = prometheus.alerts()
    while not names <= set(active) and time.monotonic() < deadline:
        time.sleep(0.5)
        active = prometheus.alerts()
    assert names <= set(active), f"active alerts: {active}"
    return active


def test_compose_health_check_passes_against_the_running_service(stack: Stack) -> None:
    test = stack.compose["services"]["mcga"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    url = healthcheck_url(test)
    command = [part.replace(url, url.replace(":8000/", f":{stack.mcga.http_port}/")) for part in test[1:]]
    assert command[0] == "python"
    command[0] = sys.executable  # the image's python is its virtual environment's, as this one
    result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    assert result.returncode == 0, result.stderr


def test_dashboards_and_alerts_run_against_prometheus(stack: Stack) -> None:
    prom, start = stack.prometheus, time.time()
    session = f"stack-{uuid.uuid4().hex[:8]}"
    # 1. Normal traffic, scraped several times.
    sent = normal_traffic(stack, session, seconds=5)
    # 2. Overload: the bounded queue sheds with 429, and the overload alert becomes active.
    counts = overload(stack, seconds=4)
    assert counts.get(429, 0) > 0 and counts.get(200, 0) > 0, counts
    assert set(counts) <= {200, 429}, counts
    wait_for_alerts(prom, {"MCGAOverloaded"})
    # 3. Redis goes away (persisting its data on the way out) and comes back.
    key = f"mcga:session:{session}"
    client = redis.Redis.from_url(stack.redis.url)
    version_before = int(client.hget(key, "v") or 0)
    assert version_before > 0 and httpx.get(f"{stack.mcga.http}/sessions/{session}").json()["steps"] == sent
    client.close()
    stack.redis.stop()
    outcomes: list[str] = []
    with httpx.Client(base_url=stack.mcga.http, timeout=30) as http:
        for i in range(12):
            r = post(http, npy(frame(5000 + i)), session)
            assert r.status_code == 200, r.text
            outcomes.append(r.headers["x-tta-outcome"])
            time.sleep(0.25)
        assert set(outcomes) == {"kept_local"}, outcomes
        assert http.get("/readyz").status_code == 503, "compose keeps ready_requires_store on"
        wait_for_alerts(prom, {"MCGASessionStoreErrors", "MCGARedisLost"})
        stack.redis.start()
        client = redis.Redis.from_url(stack.redis.url)
        assert int(client.hget(key, "v") or 0) == version_before, "Redis lost the session on restart"
        client.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the breaker closes after MCGA_BREAKER_RESET_S
            r = post(http, npy(frame(6000)), session)
            assert r.status_code == 200
            if r.headers["x-tta-outcome"] == "adapted":
                break
            time.sleep(0.25)
        assert r.headers["x-tta-outcome"] == "adapted", "sessions did not resume after Redis came back"
        info = http.get(f"/sessions/{session}").json()
        assert info["source"] == "store" and info["steps"] > sent
    time.sleep(3)  # a few more scrapes after the last request
    end = time.time()

    # Every alert expression parses and evaluates; every rule evaluated without error.
    groups = prom.api("rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    written = [r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    assert sorted(r["name"] for r in rules) == sorted(written)
    for rule in rules:
        assert rule["health"] == "ok" and not rule.get("lastError"), rule
        prom.query(rule["query"])
    active = prom.alerts()
    assert not {"MCGAHighErrorRate", "MCGATargetDown", "MCGAAbsent"} & set(active), active

    # Every dashboard query (as Grafana sends it) parses and returns data.
    dashboard = json.loads(DASHBOARD.read_text())
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "instance")
    instances = prom.api(
        "label/instance/values", **{"match[]": variable["definition"].split("(")[1].split(",")[0]}
    )
    assert f"127.0.0.1:{stack.mcga.http_port}" in instances
    on_cpu = prom.query('mcga_model_info{device="cpu"}')
    empty: list[str] = []
    for panel, target in dashboard_targets(dashboard):
        expr = grafana_to_promql(target["expr"], RATE_INTERVAL)
        result = prom.query(expr) if target.get("instant") else prom.query_range(expr, start, end)
        if finite_values(result):
            continue
        metrics = {m for m in CUDA_ONLY if m in expr}
        if metrics and on_cpu:
            # Known to Prometheus (scraped HELP/TYPE), no samples on CPU: checked on CUDA only.
            metadata = prom.api("metadata", metric=next(iter(metrics)))
            assert metadata, f"{panel['title']}: Prometheus never saw {metrics}"
            continue
        empty.append(f"{panel['title']} [{target['refId']}]: {expr}")
    assert empty == [], "panels without data:\n" + "\n".join(empty) + "\n" + tail(stack.mcga.log, 1500)
