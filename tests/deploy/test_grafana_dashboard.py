"""The Grafana dashboard and its provisioning, read as files (no Grafana server runs here).

That every panel's query parses and returns data is checked against a real Prometheus in
test_prometheus_live.py; here: the committed JSON is what deploy/grafana/build_dashboard.py builds,
it has the panels operators need, and compose's provisioning points at it.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_tools import REPO

GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "reward-service.json"


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def test_committed_json_is_what_the_builder_builds() -> None:
    pytest.importorskip("grafana_foundation_sdk", reason="grafana-foundation-sdk is in the dev extra (Python 3.11+)")
    spec = importlib.util.spec_from_file_location("build_dashboard", GRAFANA / "build_dashboard.py")
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    assert DASHBOARD.read_text() == builder.render(), (
        "dashboards/reward-service.json is stale: run .venv/bin/python deploy/grafana/build_dashboard.py")


def test_every_panel_queries_the_selected_prometheus_and_service() -> None:
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        assert [t["refId"] for t in panel["targets"]] == [chr(65 + i) for i in range(len(panel["targets"]))]
        for target in panel["targets"]:
            for selector in re.findall(r"reward_service_\w+\{([^}]*)\}", target["expr"]):
                assert 'job="$job"' in selector and 'instance=~"$instance"' in selector, (panel["title"], selector)
            assert "[5m]" not in target["expr"] and "[1m]" not in target["expr"], "windows: $__rate_interval"


def test_the_panels_the_issue_asks_for_are_there() -> None:
    by_title = {p["title"]: p for p in panels()}
    exprs = " ".join(t["expr"] for p in panels() for t in p["targets"])
    for metric in ("requests_total", "request_duration_seconds_bucket", "items_total", "reward_sum",
                   "reward_component_bucket", "notes_total", "cache_requests_total", "inflight_items",
                   "queued_items", "workers", "worker_restarts_total", "build_info"):
        assert f"reward_service_{metric}" in exprs, metric
    latency = by_title["Scoring latency p50 / p95 / p99"]
    assert [t["expr"].split(",")[0] for t in latency["targets"]] == [
        "histogram_quantile(0.5", "histogram_quantile(0.95", "histogram_quantile(0.99"]
    heatmaps = {p["title"] for p in panels() if p["type"] == "heatmap"}
    assert heatmaps == {f"Component {c}: distribution" for c in ("format", "answer", "graph_node", "graph_edge", "length")}
    for panel in panels():
        if panel["type"] == "heatmap":
            assert panel["targets"][0]["format"] == "heatmap" and panel["targets"][0]["legendFormat"] == "{{le}}"
    build = by_title["Build and reward config"]
    assert "reward_config_id" in build["targets"][0]["expr"] and build["type"] == "table"
    rows = [p["title"] for p in dashboard()["panels"] if p["type"] == "row"]
    assert rows[0].startswith("Overview"), "the first row is what an operator looks at first"


def test_provisioning_points_at_the_dashboard_and_prometheus() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (prom,) = datasources["datasources"]
    assert prom["type"] == "prometheus" and prom["url"] == "http://prometheus:9090"
    scrape = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "reward-service")
    assert prom["jsonData"]["timeInterval"] == job["scrape_interval"], "Grafana must know the scrape interval"
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "reward-service.yml").read_text())
    (provider,) = providers["providers"]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert Path(DASHBOARD).parent.name == "dashboards"
