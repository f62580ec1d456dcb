"""Build the reward service's Grafana dashboard with grafana-foundation-sdk (Grafana 11.6 schema).

    .venv/bin/python deploy/grafana/build_dashboard.py      # rewrites dashboards/reward-service.json

The JSON is committed (Grafana provisions it from the file, in compose and on Kubernetes) and
tests/deploy/test_grafana_dashboard.py checks that it is what this script builds, so edit here.
Every query is run against a real Prometheus holding the service's metrics by
tests/deploy/test_prometheus_live.py: a panel that is blank or broken fails the build.

Rows, top to bottom, in the order an operator reads them (docs/operations.md says why):
overview (traffic, errors, latency, items), rewards (what the policy earns and its faults),
capacity (cache, queue, workers), build.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import heatmap, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

OUT = Path(__file__).resolve().parent / "dashboards" / "reward-service.json"
UID = "reward-service"
COMPONENTS = ("format", "answer", "graph_node", "graph_edge", "length")

DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
SEL = 'job="$job", instance=~"$instance"'  # every query is scoped by the two variables
RATE = "$__rate_interval"  # at least 4 scrapes (the datasource's timeInterval is 5s): never a blank rate
SCORING = 'route=~"/v1/rewards|/get_reward"'


def query(expr: str, legend: str = "", fmt: PromQueryFormat = PromQueryFormat.TIME_SERIES,
          instant: bool = False) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).legend_format(legend or "__auto").format(fmt)
    return q.instant() if instant else q.range()


def series(title: str, description: str, unit: str, *targets: prometheus.Dataquery,
           width: int = 12) -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).description(description).datasource(DS).unit(unit)
             .height(8).span(width)
             .legend(common_b.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE)
                     .placement(common.LegendPlacement.BOTTOM).show_legend(True).calcs(["mean", "max"])))
    for target in targets:
        panel = panel.with_target(target)
    return panel


def component_heatmap(component: str) -> heatmap.Panel:
    expr = f'sum by (le) (increase(reward_service_reward_component_bucket{{{SEL}, component="{component}"}}[{RATE}]))'
    return (heatmap.Panel().title(f"Component {component}: distribution")
            .description(f"How many scored items got each value of the {component} component (0 to 1), "
                         "over time: from the reward_service_reward_component histogram, all task types.")
            .datasource(DS).height(7).span(8).calculate(False)
            .with_target(query(expr, "{{le}}", PromQueryFormat.HEATMAP)))


def overview_row(d: dash.Dashboard) -> dash.Dashboard:
    d = d.with_row(dash.Row("Overview: traffic, errors, latency"))
    d = d.with_panel(series(
        "Requests by route", "HTTP requests answered per second, by route.", "reqps",
        query(f"sum by (route) (rate(reward_service_requests_total{{{SEL}}}[{RATE}]))", "{{route}}")))
    d = d.with_panel(series(
        "Errors by route and code",
        "4xx and 5xx per second. 422: a client sent an invalid reference; 429: the queue is full (add "
        "replicas); 503: starting or draining; 5xx otherwise: a fault of the service.", "reqps",
        query(f'sum by (route, code) (rate(reward_service_requests_total{{{SEL}, code=~"4..|5.."}}[{RATE}]))',
              "{{route}} {{code}}")))
    latency = [query(f"histogram_quantile({q}, sum by (le, route) "
                     f"(rate(reward_service_request_duration_seconds_bucket{{{SEL}, {SCORING}}}[{RATE}])))",
                     f"p{round(q * 100)} {{{{route}}}}") for q in (0.5, 0.95, 0.99)]
    d = d.with_panel(series(
        "Scoring latency p50 / p95 / p99",
        "Duration of scoring requests. A 512-item request took 30-90 ms at p99 on 2 cores; the alert "
        "fires at 0.5 s.", "s", *latency))
    d = d.with_panel(series(
        "Items by task type and status",
        "Items answered per second (cached ones included). Any status but ok is masked: no reward, "
        "left out of GRPO's group statistics.", "ops",
        query(f"sum by (task_type, status) (rate(reward_service_items_total{{{SEL}}}[{RATE}]))",
              "{{task_type}} {{status}}")))
    return d


def rewards_row(d: dash.Dashboard) -> dash.Dashboard:
    d = d.with_row(dash.Row("Rewards: what the policy earns"))
    d = d.with_panel(series(
        "Mean reward by task type",
        "Mean total reward of the items scored in each interval. A rising line is the policy learning.",
        "none",
        query(f"sum by (task_type) (rate(reward_service_reward_sum{{{SEL}}}[{RATE}]))"
              f" / sum by (task_type) (rate(reward_service_reward_count{{{SEL}}}[{RATE}]))", "{{task_type}}")))
    d = d.with_panel(series(
        "Notes: which faults the policy makes",
        "Reward-spec notes per second (answer_missing, graph_invalid, ...): the faults in the policy's "
        "output that cost it reward.", "ops",
        query(f"sum by (note) (rate(reward_service_notes_total{{{SEL}}}[{RATE}]))", "{{note}}")))
    for component in COMPONENTS:
        d = d.with_panel(component_heatmap(component))
    return d


def capacity_row(d: dash.Dashboard) -> dash.Dashboard:
    d = d.with_row(dash.Row("Capacity: cache, queue, workers"))
    d = d.with_panel(series(
        "Cache hit ratio",
        "Share of item look-ups answered from the cache (retried requests, repeated rollouts).",
        "percentunit",
        query(f'sum(rate(reward_service_cache_requests_total{{{SEL}, result="hit"}}[{RATE}]))'
              f" / sum(rate(reward_service_cache_requests_total{{{SEL}}}[{RATE}]))", "hit ratio"),
        width=8))
    d = d.with_panel(series(
        "Cache look-ups by result",
        "hit, miss, error per second. Errors (Redis down or slower than 50 ms) lose nothing, but the "
        "items are scored again.", "ops",
        query(f"sum by (result) (rate(reward_service_cache_requests_total{{{SEL}}}[{RATE}]))", "{{result}}"),
        width=8))
    d = d.with_panel(series(
        "In-flight and queued items",
        "Items being scored and items waiting for a worker; requests being served. Queued items near "
        "--max-queued-items (16384) means 429s are next.", "short",
        query(f"sum(reward_service_inflight_items{{{SEL}}})", "in flight"),
        query(f"sum(reward_service_queued_items{{{SEL}}})", "queued"),
        query(f"sum(reward_service_inflight_requests{{{SEL}}})", "requests"),
        width=8))
    d = d.with_panel(series(
        "Scoring workers", "Scoring processes ready to work, per replica.", "short",
        query(f"sum by (instance) (reward_service_workers{{{SEL}}})", "{{instance}}"), width=8))
    d = d.with_panel(series(
        "Worker restarts by reason",
        "Scoring processes killed for an item past its deadline, or lost, and replaced.", "short",
        query(f"sum by (reason) (increase(reward_service_worker_restarts_total{{{SEL}}}[{RATE}]))", "{{reason}}"),
        width=8))
    d = d.with_panel(series(
        "Item scoring time p99 by task type", "Time to score one item in a worker (deadline 2 s).", "s",
        query(f"histogram_quantile(0.99, sum by (le, task_type) "
              f"(rate(reward_service_item_scoring_duration_seconds_bucket{{{SEL}}}[{RATE}])))", "{{task_type}}"),
        width=8))
    return d


def build_row(d: dash.Dashboard) -> dash.Dashboard:
    d = d.with_row(dash.Row("Build"))
    d = d.with_panel(
        table.Panel().title("Build and reward config")
        .description("Version, scorer version and default reward config id of each replica. Two ids at "
                     "once means a rollout is in progress, or replicas that score differently.")
        .datasource(DS).height(6).span(18)
        .with_target(query(f"max by (instance, version, scorer_version, reward_config_id) "
                           f"(reward_service_build_info{{{SEL}}})", fmt=PromQueryFormat.TABLE, instant=True)))
    d = d.with_panel(
        stat.Panel().title("Replicas up").description("Targets Prometheus scrapes successfully.")
        .datasource(DS).height(6).span(6)
        .with_target(query('sum(up{job="$job"})', "up", instant=True)))
    return d


def build() -> dict[str, Any]:
    d = (dash.Dashboard("Reward service").uid(UID).tags(["reward-service", "grpo"])
         .description("Video-STR reward service: traffic, latency, rewards, faults of the policy, capacity.")
         .refresh("30s").time("now-1h", "now").timezone("browser").editable()
         .tooltip(dash.dashboard.DashboardCursorSync.CROSSHAIR)
         .with_variable(dash.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
         .with_variable(dash.QueryVariable("job").label("Job").datasource(DS)
                        .query("label_values(reward_service_build_info, job)")
                        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED))
         .with_variable(dash.QueryVariable("instance").label("Instance").datasource(DS)
                        .query('label_values(reward_service_build_info{job="$job"}, instance)')
                        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
                        .multi(True).include_all(True).all_value(".*")))
    for row in (overview_row, rewards_row, capacity_row, build_row):
        d = row(d)
    encoded: dict[str, Any] = json.loads(json.dumps(d.build(), cls=JSONEncoder))
    return number(encoded)


def number(encoded: dict[str, Any]) -> dict[str, Any]:
    """Stable panel ids and query refIds (A, B, ...), which the builders leave unset: Grafana would
    invent them on load, and a provisioned file would then differ from what Grafana shows."""
    for panel_id, panel in enumerate(encoded["panels"], start=1):
        panel["id"] = panel_id
        for index, target in enumerate(panel.get("targets", [])):
            target["refId"] = chr(ord("A") + index)
    return encoded


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render())
    print(f"wrote {OUT}", file=sys.stderr)
