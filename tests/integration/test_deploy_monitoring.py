"""Prometheus and Grafana files, offline: `promtool check config|rules`, the alerts' unit tests
(`promtool test rules`), Grafana provisioning, and the dashboard's structure and metric names against
the service's own registry. test_deploy_stack.py runs every query against a real Prometheus."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.deploy_helpers import (
    ALERT_TESTS,
    ALERTS,
    DASHBOARD,
    GRAFANA_PROVISIONING,
    K8S,
    PROMETHEUS_CONFIG,
    dashboard_targets,
    exposed_metric_names,
    metrics_in,
    require_tool,
    run_tool,
)


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_tool("promtool")


def test_promtool_checks_the_compose_config_and_its_rules(promtool: str) -> None:
    result = run_tool([promtool, "check", "config", str(PROMETHEUS_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout + result.stderr
    result = run_tool([promtool, "check", "rules", str(ALERTS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_on_what_they_name_and_not_on_look_alikes(promtool: str) -> None:
    result = run_tool([promtool, "test", "rules", str(ALERT_TESTS)])
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {
        t["alertname"]
        for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for t in case["alert_rule_test"]
    }
    assert tested == set(alert_rules()), "every alert has a unit test"


def test_promtool_checks_the_kubernetes_scrape_config(promtool: str, tmp_path: Path) -> None:
    """Debian's Prometheus is built without Kubernetes discovery, so the pod discovery is swapped for
    a static target; the relabelling, intervals and job name are checked as written."""
    config = yaml.safe_load((K8S / "monitoring" / "prometheus-scrape.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "mcga", "the alerts and the dashboard select job=mcga"
    assert job["kubernetes_sd_configs"][0]["role"] == "pod"
    del job["kubernetes_sd_configs"]
    job["static_configs"] = [{"targets": ["127.0.0.1:8000"]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = run_tool([promtool, "check", "config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    targets = {r.get("target_label") for r in job["relabel_configs"]}
    assert {"namespace", "pod", "instance", "__metrics_path__"} <= targets


def alert_rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def test_alerts_cover_overload_errors_and_redis_loss_with_real_metrics() -> None:
    rules = alert_rules()
    exposed = exposed_metric_names()
    for name, rule in rules.items():
        assert metrics_in(rule["expr"]) <= exposed, name
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    text = {name: rule["expr"] for name, rule in rules.items()}
    assert "mcga_queue_depth" in text["MCGAQueueBacklog"]
    assert 'status="429"' in text["MCGAOverloaded"]
    assert 'status=~"5.."' in text["MCGAHighErrorRate"]
    assert "mcga_session_store_errors_total" in text["MCGASessionStoreErrors"]
    assert "mcga_session_store_breaker_open" in text["MCGARedisLost"]


# ---- Grafana -----------------------------------------------------------------------------------


def test_grafana_provisioning_points_at_the_dashboard_data_source(dashboard: dict[str, Any]) -> None:
    sources = yaml.safe_load((GRAFANA_PROVISIONING / "datasources" / "prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["datasource"]["current"]["value"] == source["uid"]
    providers = yaml.safe_load((GRAFANA_PROVISIONING / "dashboards" / "mcga.yml").read_text())["providers"]
    assert providers[0]["type"] == "file" and providers[0]["options"]["path"]


def test_dashboard_is_well_formed(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    # Panels do not overlap on the 24-column grid.
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        mine = {(g["y"] + dy, g["x"] + dx) for dy in range(g["h"]) for dx in range(g["w"])}
        assert not mine & cells, f"{p['title']} overlaps another panel"
        cells |= mine
    for p in panels:
        if p["type"] == "row":
            continue
        assert p["type"] in {"timeseries", "stat", "heatmap"}, p["type"]
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p.get("description"), f"{p['title']} says what it shows"
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]


def test_dashboard_queries_name_only_metrics_the_service_exposes(dashboard: dict[str, Any]) -> None:
    exposed = exposed_metric_names()
    used: set[str] = set()
    for panel, target in dashboard_targets(dashboard):
        names = metrics_in(target["expr"])
        assert names or 'up{job="mcga"' in target["expr"], f"{panel['title']}: {target['expr']}"
        assert names <= exposed, f"{panel['title']}: {sorted(names - exposed)}"
        assert 'instance=~"$instance"' in target["expr"], f"{panel['title']} follows the Replica variable"
        # Only the mcga job: a generic job scraping the pods' annotations would count everything twice.
        selectors = re.findall(r"\b(?:mcga_\w+|up)\{([^}]*)\}", target["expr"])
        assert selectors and all('job="mcga"' in sel for sel in selectors), target["expr"]
        used |= names
    # What the issue asks the dashboard to show.
    wanted = {
        "mcga_http_requests_total",
        "mcga_http_request_duration_seconds_bucket",
        "mcga_queue_depth",
        "mcga_batch_size_bucket",
        "mcga_inference_duration_seconds_bucket",
        "mcga_tta_entropy_bucket",
        "mcga_tta_steps_total",
        "mcga_session_store_errors_total",
        "mcga_device_memory_bytes",
    }
    assert sorted(wanted - used) == []
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "instance")
    assert metrics_in(variable["definition"]) <= exposed and 'job="mcga"' in variable["definition"]
