"""Write k8s/base/prometheusrule.yaml from rules/reward-service.rules.yml: one source for the alerts.

    python3 deploy/prometheus/prometheusrule.py

Compose's Prometheus (and promtool) read the rules file as it is; the Prometheus Operator wants the
same groups inside a PrometheusRule. kustomize cannot wrap a file into a custom resource's spec, so
this script does, and tests/deploy/test_prometheus_rules.py fails when the two differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "rules" / "reward-service.rules.yml"
OUT = HERE.parents[1] / "k8s" / "base" / "prometheusrule.yaml"
HEADER = ("# Generated from deploy/prometheus/rules/reward-service.rules.yml by deploy/prometheus/prometheusrule.py:\n"
          "# edit the rules there, then run the script. Runbooks: docs/operations.md.\n")


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the longer PromQL expressions) as literal blocks, as in the rules file."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def render() -> str:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "reward-service", "labels": {"release": "prometheus"}},
        "spec": {"groups": groups},
    }
    return HEADER + yaml.dump(resource, Dumper=_Dumper, sort_keys=False, width=120)


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}", file=sys.stderr)
