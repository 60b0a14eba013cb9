"""The image and the compose stack, checked offline (no Docker engine runs on these machines):
hadolint on the Dockerfile, docker-compose.yml against the Compose Specification's JSON schema, and
both against the service itself: settings and their defaults (.env.example), ports, health paths,
the image's command, and the paths that Prometheus and Grafana find their files at.
The stack's processes themselves run in test_deploy_stack.py."""

from __future__ import annotations

import fnmatch
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import pytest
import yaml

from model.cli import build_parser
from service.settings import Settings
from tests.integration.deploy_helpers import (
    COMPOSE_FILE,
    DEPLOY,
    DOCKERFILE,
    ROOT,
    compose_variables,
    environment_of,
    healthcheck_url,
    http_routes,
    load_compose,
    read_env_example,
    require_tool,
    run_tool,
    settings_env_names,
    settings_from_env,
)

MCGA_SERVICES = ("mcga", "mcga-gpu")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def routes() -> set[str]:
    return http_routes()


# ---- Dockerfile --------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        current += (
            " " + stripped.removesuffix("\\").strip() if current else stripped.removesuffix("\\").strip()
        )
        if not stripped.endswith("\\"):
            joined.append(current)
            current = ""
    out = []
    for item in joined:
        word, _, rest = item.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_finds_nothing() -> None:
    hadolint = require_tool("hadolint")
    result = run_tool([hadolint, "--no-color", "--failure-threshold", "style", str(DOCKERFILE)])
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_dockerfile_is_multi_stage_non_root_with_a_health_check(routes: set[str]) -> None:
    ins = dockerfile_instructions()
    stages = [rest for word, rest in ins if word == "FROM"]
    assert len(stages) >= 3, stages
    final = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    final_stage = ins[final:]
    # CPU by default, CUDA by build argument: both torch stages exist and the build stage picks one.
    assert ("ARG", "VARIANT=cpu") in ins
    names = {rest.split(" AS ")[-1].strip() for rest in stages if " AS " in rest}
    assert {"torch-cpu", "torch-cuda"} <= names
    assert any(rest.startswith("torch-${VARIANT} AS") for rest in stages)
    assert any("download.pytorch.org/whl/cpu" in rest for word, rest in ins if word == "RUN")
    # The runtime stage is slim, copies only the environment, runs as an unprivileged numeric user.
    assert "slim" in ins[final][1]
    copies = [rest for word, rest in final_stage if word == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv"], copies
    users = [rest for word, rest in final_stage if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root") and users[-1].split(":")[0].isdigit()
    # The health check asks a route the REST edge serves, on the port the image configures.
    health = [rest for word, rest in final_stage if word == "HEALTHCHECK"]
    assert len(health) == 1
    path = re.search(r"http://127\.0\.0\.1:%s(/[a-z/]+)", health[0])
    assert path and path.group(1) in routes, health[0]
    assert "MCGA_HTTP_PORT" in health[0]


def test_dockerfile_environment_ports_and_command_match_the_service() -> None:
    ins = dockerfile_instructions()
    final_stage = ins[max(i for i, (word, _) in enumerate(ins) if word == "FROM") :]
    env: dict[str, str] = {}
    for word, rest in final_stage:
        if word == "ENV":
            env |= dict(re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", rest))
    mcga_env = {k: v for k, v in env.items() if k.startswith("MCGA_") or k == "REDIS_URL"}
    settings = settings_from_env(mcga_env)
    assert settings.host == "0.0.0.0"
    exposed = {int(p) for word, rest in final_stage if word == "EXPOSE" for p in rest.split()}
    assert exposed == {settings.http_port, settings.grpc_port}
    entrypoint = json.loads(dict(final_stage)["ENTRYPOINT"])
    cmd = json.loads(dict(final_stage)["CMD"])
    assert entrypoint == ["mcga"], "the console script of pyproject's [project.scripts]"
    args = build_parser().parse_args(cmd)
    assert args.func.__name__ == "_serve"


def _dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path (or a parent of it) decides."""
    excluded = False
    parts = path.split("/")
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.removeprefix("!").strip("/")
        regex = fnmatch.translate(pat).replace(".*", "[^/]*").replace("[^/]*[^/]*", ".*")
        if pat.startswith("**/"):
            regex = "(.*/)?" + fnmatch.translate(pat[3:]).replace(".*", "[^/]*")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def test_dockerignore_sends_the_sources_and_weights_and_nothing_else() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sent = ["pyproject.toml", "README.md", "model/cli.py", "service/settings.py", "model/weights/mcga_s2.pt"]
    kept_out = [
        ".venv/bin/python",
        "runs/train/x.pt",
        "tests/conftest.py",
        ".git/HEAD",
        "deploy/k8s/hpa.yaml",
    ]
    kept_out += ["service/__pycache__/x.pyc", "model/weights/other.pt", "mcga.egg-info/PKG-INFO"]
    assert [p for p in sent if _dockerignore_excludes(p, patterns)] == []
    assert [p for p in kept_out if not _dockerignore_excludes(p, patterns)] == []
    # Everything the Dockerfile copies from the context is sent.
    for word, rest in dockerfile_instructions():
        if word == "COPY" and not rest.startswith("--from"):
            for src in rest.split()[:-1]:
                assert not _dockerignore_excludes(src.rstrip("/"), patterns), src


# ---- docker-compose.yml ------------------------------------------------------------------------


def compose_schema() -> dict[str, Any]:
    """The Compose Specification's schema, as vendored (Apache-2.0) by check-jsonschema."""
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "compose-spec.json").read_text())
    assert isinstance(schema, dict)
    return schema


@pytest.mark.parametrize(
    "env", [{}, {"COMPOSE_PROFILES": "gpu", "CPU_REPLICAS": "0", "HTTP_PORT": "18000"}], ids=["cpu", "gpu"]
)
def test_compose_file_follows_the_compose_specification(env: dict[str, str]) -> None:
    schema = compose_schema()
    validator = jsonschema.Draft202012Validator(schema)
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(raw)]
    errors += [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(load_compose(env))]
    assert errors == []


def test_compose_services_start_in_health_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"mcga", "mcga-gpu", "redis", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
        for dep, cond in (service.get("depends_on") or {}).items():
            assert cond["condition"] == "service_healthy", (name, dep)
            assert "healthcheck" in services[dep]
    for name in MCGA_SERVICES:
        assert services[name]["depends_on"] == {"redis": {"condition": "service_healthy"}}
    assert services["grafana"]["depends_on"] == {"prometheus": {"condition": "service_healthy"}}


def test_compose_mcga_matches_the_service_settings(compose: dict[str, Any], routes: set[str]) -> None:
    services = compose["services"]
    for name in MCGA_SERVICES:
        service = services[name]
        env = environment_of(service)
        settings = settings_from_env(env)  # every MCGA_* variable is a setting, with a valid value
        assert settings.host == "0.0.0.0"
        # Published ports land on the ports the server binds.
        targets = {int(str(p).rsplit(":", 1)[1]) for p in service["ports"]}
        assert targets == {settings.http_port, settings.grpc_port}
        # The health check asks a real route on the HTTP port.
        url = urlparse(healthcheck_url(service["healthcheck"]["test"]))
        assert url.port == settings.http_port and url.path in routes and url.path == "/readyz"
        # The image's ENTRYPOINT (mcga) with this command is `mcga serve`.
        assert build_parser().parse_args(service["command"]).func.__name__ == "_serve"
        # Sessions go to the compose Redis.
        redis_url = urlparse(str(settings.redis_url))
        assert redis_url.hostname == "redis" and redis_url.port == 6379
        assert service["env_file"] == [{"path": ".env", "required": False}]
        assert int(service["stop_grace_period"].removesuffix("s")) > 25, "the server drains for 25 s"
    gpu = services["mcga-gpu"]
    assert gpu["profiles"] == ["gpu"] and gpu["build"]["args"]["VARIANT"] == "cuda"
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert "mcga" in gpu["networks"]["default"]["aliases"]
    assert environment_of(gpu)["MCGA_DEVICE"] == "cuda"
    assert services["mcga"]["build"]["args"]["VARIANT"] == "cpu"
    assert "profiles" not in services["mcga"]


def test_compose_redis_persists_sessions(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[0] == "redis-server"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert redis["volumes"][0].split(":")[0] in compose["volumes"]


def test_compose_prometheus_and_grafana_find_their_files(compose: dict[str, Any]) -> None:
    services = compose["services"]

    def mounts(service: dict[str, Any]) -> dict[str, Path]:
        out = {}
        for volume in service["volumes"]:
            source, target = volume.split(":")[:2]
            if source.startswith("./"):
                out[target] = ROOT / source
        return out

    prom = services["prometheus"]
    prom_mounts = mounts(prom)
    config = next(a.split("=", 1)[1] for a in prom["command"] if a.startswith("--config.file="))
    folder, file = config.rsplit("/", 1)
    assert (prom_mounts[folder] / file) == DEPLOY / "prometheus" / "prometheus.yml"
    prom_config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    for rule_file in prom_config["rule_files"]:
        assert (prom_mounts[folder] / rule_file).is_file()
    # Prometheus scrapes the name both mcga variants answer to, on their HTTP port, at /metrics.
    job = next(j for j in prom_config["scrape_configs"] if j["job_name"] == "mcga")
    assert job["metrics_path"] == "/metrics"
    sd = job["dns_sd_configs"][0]
    assert (
        sd["names"] == ["mcga"]
        and sd["port"] == settings_from_env(environment_of(services["mcga"])).http_port
    )

    grafana = services["grafana"]
    g_mounts = mounts(grafana)
    assert g_mounts["/etc/grafana/provisioning"] == DEPLOY / "grafana" / "provisioning"
    providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/mcga.yml").read_text())["providers"]
    dashboards_in = providers[0]["options"]["path"]
    assert (g_mounts[dashboards_in] / "mcga.json").is_file()
    home = environment_of(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{dashboards_in}/mcga.json"
    sources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    url = urlparse(sources["datasources"][0]["url"])
    assert url.hostname == "prometheus" and url.hostname in services
    assert any(p.endswith(f":{url.port}") for p in prom["ports"])


# ---- .env.example ------------------------------------------------------------------------------


def test_env_example_documents_every_setting_with_its_default() -> None:
    example = read_env_example()
    names = settings_env_names()
    documented = {k for k in example.values if k in names or k.startswith("MCGA_")}
    assert sorted(set(names) - documented) == [], "settings missing from .env.example"
    assert sorted(documented - set(names)) == [], ".env.example names that are not settings"
    assert [k for k, n in example.counts.items() if n > 1] == []
    assert example.active == set(), "everything commented out: copying the file changes nothing"
    defaults = Settings.model_fields
    for env_name, field in names.items():
        value = settings_from_env({env_name: example.values[env_name]})
        if field in ("weights", "redis_url"):  # examples: the defaults are the bundled file / none
            continue
        assert getattr(value, field) == defaults[field].default, f"{env_name}: not the default"


def test_env_example_documents_every_compose_variable() -> None:
    example = read_env_example()
    variables = compose_variables(COMPOSE_FILE.read_text())
    assert sorted(variables - set(example.values)) == []
    compose_only = {k for k in example.values if k not in settings_env_names()}
    assert sorted(compose_only - variables - {"COMPOSE_PROFILES"}) == []
    assert not any(v.startswith("MCGA_") for v in compose_only), "MCGA_ is the settings' prefix"
