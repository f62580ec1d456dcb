"""The alert rules and scrape config, checked by promtool (Debian's `prometheus` package).

`promtool test rules` runs deploy/prometheus/tests/*.test.yml: for every alert, a series that must
fire it and one that must not. The PrometheusRule of k8s/base is generated from the same file.
"""

from __future__ import annotations

import importlib.util

import pytest
import yaml
from deploy_tools import REPO, run, tool

pytestmark = pytest.mark.prometheus

PROM = REPO / "deploy" / "prometheus"
RULES = PROM / "rules" / "reward-service.rules.yml"
ALERTS = {"RewardServiceHighErrorRatio", "RewardServiceHighLatencyP99", "RewardServiceHighMaskedItemRatio",
          "RewardServiceCacheErrors", "RewardServiceWorkerRestarts", "RewardServiceQueueSaturated",
          "RewardServiceTargetDown"}


def promtool() -> str:
    return tool("promtool", "apt-get install prometheus")


def alert_rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def test_promtool_checks_config_and_rules() -> None:
    out = run(promtool(), "check", "config", str(PROM / "prometheus.yml")).stdout
    assert "1 rule files found" in out
    run(promtool(), "check", "rules", str(RULES))


def test_promtool_unit_tests_pass_and_cover_every_alert() -> None:
    tests = sorted((PROM / "tests").glob("*.test.yml"))
    assert tests
    out = run(promtool(), "test", "rules", *map(str, tests)).stdout
    assert "SUCCESS" in out
    tested = {case["alertname"] for path in tests for test in yaml.safe_load(path.read_text())["tests"]
              for case in test.get("alert_rule_test", [])}
    assert tested == ALERTS == {r["alert"] for r in alert_rules()}
    firing = {case["alertname"] for path in tests for test in yaml.safe_load(path.read_text())["tests"]
              for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert firing == ALERTS, "every alert needs a case where it fires"


def test_every_alert_has_a_severity_and_a_runbook_in_the_docs() -> None:
    operations = (REPO / "docs" / "operations.md").read_text().lower()
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
        anchor = rule["annotations"]["runbook_url"].split("#")[1]
        assert anchor == rule["alert"].lower() and f"### {rule['alert'].lower()}" in operations, rule["alert"]


def test_kubernetes_prometheusrule_is_generated_from_the_rules_file() -> None:
    spec = importlib.util.spec_from_file_location("prometheusrule", PROM / "prometheusrule.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (REPO / "k8s" / "base" / "prometheusrule.yaml").read_text()
    assert committed == module.render(), "k8s/base/prometheusrule.yaml is stale: run deploy/prometheus/prometheusrule.py"
    assert yaml.safe_load(committed)["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
