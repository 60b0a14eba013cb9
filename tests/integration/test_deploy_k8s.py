"""deploy/k8s, offline: every manifest against the Kubernetes schemas (kubernetes-validate, strict),
and the manifests against each other and against the service (settings, ports, probe paths, metric
names, drain time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import kubernetes_validate
import pytest
import yaml

from service.main import DRAIN_CAP_S
from tests.integration.deploy_helpers import (
    K8S,
    exposed_metric_names,
    http_routes,
    load_yaml_documents,
    settings_from_env,
)

# The oldest release still supported upstream when this was written, and the newest schema shipped.
K8S_VERSIONS = ("1.31.0", kubernetes_validate.latest_version())

MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def resources() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> manifest, over every file."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in MANIFESTS:
        for doc in load_yaml_documents(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in out, f"{key} defined twice"
            out[key] = doc
    return out


@pytest.fixture(scope="module")
def k8s() -> dict[tuple[str, str], dict[str, Any]]:
    return resources()


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes quantity in binary units ("4Gi", "512Mi") as bytes."""
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}
    unit = quantity[-2:]
    return int(quantity[:-2]) * units[unit] if unit in units else int(quantity)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_is_valid_kubernetes(path: Path, version: str) -> None:
    for doc in load_yaml_documents(path):
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in getattr(exc, "absolute_path", []))
            message = getattr(exc, "message", str(exc)[:500])
            name = f"{doc['kind']}/{doc['metadata']['name']}"
            pytest.fail(f"{path.name} {name} (Kubernetes {version}) at {where}: {message}")


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == [p.name for p in MANIFESTS]
    assert kustomization["namespace"] == "mcga"


def _container(k8s: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    (container,) = k8s[("Deployment", "mcga")]["spec"]["template"]["spec"]["containers"]
    return container


def test_deployment_probes_ports_and_settings_match_the_service(k8s: dict[tuple[str, str], Any]) -> None:
    deployment = k8s[("Deployment", "mcga")]
    pod = deployment["spec"]["template"]["spec"]
    container = _container(k8s)
    config = k8s[("ConfigMap", "mcga-config")]["data"]
    assert [ref["configMapRef"]["name"] for ref in container["envFrom"]] == ["mcga-config"]
    env = dict(config) | {e["name"]: e["value"] for e in container.get("env", [])}
    settings = settings_from_env(env)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": settings.http_port, "grpc": settings.grpc_port}
    assert settings.host == "0.0.0.0"
    # Liveness on /healthz, readiness on /readyz, a start-up allowance for loading the weights.
    routes = http_routes()
    probes = {
        kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes["livenessProbe"]["path"] == "/healthz" and probes["readinessProbe"]["path"] == "/readyz"
    for probe in probes.values():
        assert probe["path"] in routes and probe["port"] in ports
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    # Redis loss must not take every replica out of rotation (readiness ignores the store).
    assert settings.ready_requires_store is False
    # Sessions go to the Redis Service of redis.yaml.
    redis_url = urlparse(str(settings.redis_url))
    redis_service = k8s[("Service", str(redis_url.hostname))]
    assert redis_url.port in [p["port"] for p in redis_service["spec"]["ports"]]
    # A GPU, requested and limited (extended resources need both equal), plus CPU and memory.
    resources_ = container["resources"]
    assert resources_["requests"]["nvidia.com/gpu"] == resources_["limits"]["nvidia.com/gpu"] == "1"
    assert {"cpu", "memory"} <= set(resources_["requests"])
    assert settings.device.startswith("cuda")
    # SIGTERM drains for at most DRAIN_CAP_S after the preStop pause, within the grace period.
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pause + DRAIN_CAP_S
    assert container["args"] == ["serve"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}
    # Multipart uploads spool to /tmp: several bodies at the size limit fit before eviction.
    (tmp,) = [v for v in pod["volumes"] if v["name"] == "tmp"]
    assert quantity_bytes(tmp["emptyDir"]["sizeLimit"]) >= 8 * settings.max_body_bytes
    # Service links would put MCGA_PORT, MCGA_REDIS_PORT, ... beside the settings (warned as unknown).
    assert pod["enableServiceLinks"] is False
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(settings.http_port)
    assert annotations["prometheus.io/path"] in routes
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"


def test_services_pdb_and_hpa_select_the_deployment(k8s: dict[tuple[str, str], Any]) -> None:
    deployment = k8s[("Deployment", "mcga")]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    port_names = {p["name"] for p in _container(k8s)["ports"]}
    for name in ("mcga", "mcga-grpc-headless"):
        service = k8s[("Service", name)]
        assert service["spec"]["selector"].items() <= pod_labels.items(), name
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names, name
    assert {p["name"] for p in k8s[("Service", "mcga")]["spec"]["ports"]} == {"http", "grpc"}
    assert k8s[("Service", "mcga-grpc-headless")]["spec"]["clusterIP"] == "None"
    pdb = k8s[("PodDisruptionBudget", "mcga")]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    hpa = k8s[("HorizontalPodAutoscaler", "mcga")]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "mcga"}
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    assert pdb["spec"]["maxUnavailable"] < hpa["minReplicas"], "a drain leaves a replica serving"


def test_hpa_metric_is_served_by_the_adapter_from_a_real_metric(k8s: dict[tuple[str, str], Any]) -> None:
    hpa = k8s[("HorizontalPodAutoscaler", "mcga")]["spec"]
    (metric,) = hpa["metrics"]
    assert metric["type"] == "Pods"
    name = metric["pods"]["metric"]["name"]
    adapter = yaml.safe_load((K8S / "monitoring" / "prometheus-adapter-values.yaml").read_text())
    rules = {rule["name"]["as"]: rule for rule in adapter["rules"]["custom"]}
    rule = rules[name]
    series = rule["seriesQuery"].split("{")[0]
    assert series in exposed_metric_names() and series == "mcga_queue_depth"
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}
    # The cluster's scrape config attaches those labels.
    scrape = yaml.safe_load((K8S / "monitoring" / "prometheus-scrape.yml").read_text())
    labels = {r.get("target_label") for r in scrape["scrape_configs"][0]["relabel_configs"]}
    assert {"namespace", "pod"} <= labels
    # The adapter reads the mcga job only (a generic job scraping the pods' annotations sees the
    # same gauge), one series a pod.
    assert 'job="mcga"' in rule["seriesQuery"] and 'job="mcga"' in rule["metricsQuery"]
    assert rule["metricsQuery"].startswith("sum by (<<.GroupBy>>)")
    assert scrape["scrape_configs"][0]["job_name"] == "mcga"


def test_redis_persists_sessions(k8s: dict[tuple[str, str], Any]) -> None:
    redis = k8s[("StatefulSet", "mcga-redis")]["spec"]
    (container,) = redis["template"]["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--save") + 1] == "", "AOF only: one fork-and-rewrite at a time"
    # The rewrite's copy-on-write pages fit under the limit; the volume holds base, increments, rewrite.
    maxmemory = quantity_bytes(args[args.index("--maxmemory") + 1].removesuffix("b").upper() + "i")
    assert 2 * maxmemory <= quantity_bytes(container["resources"]["limits"]["memory"])
    (claim,) = redis["volumeClaimTemplates"]
    assert quantity_bytes(claim["spec"]["resources"]["requests"]["storage"]) >= 4 * maxmemory
    assert {m["name"]: m["mountPath"] for m in container["volumeMounts"]} == {
        claim["metadata"]["name"]: "/data"
    }
