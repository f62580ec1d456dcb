"""The service, scraped by a real Prometheus with the project's own scrape config and alert rules.

`reward-service serve` and `prometheus` (Debian's package) run on 127.0.0.1; the config is
deploy/prometheus/prometheus.yml with only the target's address changed, and its rules are the
project's (rules/ beside it). After a bounded burst of scoring traffic, everything is asserted
through Prometheus's HTTP API: the target is up, the reward, component, note, item and cache
series carry the labels and counts the responses imply, every alert rule evaluates without error,
and every panel query of the Grafana dashboard parses and returns data.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from deploy_tools import REPO, stop, tool, wait_http_ok
from service_fixtures import GOOD, GRAPH_GOOD, GRAPH_REF, MC_REF, WRONG, free_port, golden_cases, real_server

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

PROM_DIR = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "reward-service.json"
JOB = "reward-service"
# Grafana's variables, as a viewer with job reward-service and all instances selected sees them.
VARIABLES = {"$__rate_interval": "1m", "$job": JOB, "$instance": ".*"}


class Prometheus:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10.0)

    def api(self, path: str, **params: str) -> Any:
        body = self.http.get(f"/api/v1/{path}", params=params).json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def values(self, expr: str, *labels: str) -> dict[tuple[str, ...], float]:
        return {tuple(r["metric"].get(name, "") for name in labels): float(r["value"][1]) for r in self.query(expr)}

    def wait(self, what: str, ok: Any, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not ok():
            if time.monotonic() > deadline:
                raise AssertionError(f"Prometheus: {what} not seen within {timeout_s:.0f} s")
            time.sleep(0.5)


def scrape_config_for(port: int) -> dict[str, Any]:
    """The project's prometheus.yml, its one target pointed at 127.0.0.1:<port>; nothing else changes."""
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    jobs = [job for job in config["scrape_configs"] if job["job_name"] == JOB]
    assert len(jobs) == 1 and len(jobs[0]["static_configs"]) == 1, "expected one reward-service target"
    jobs[0]["static_configs"][0]["targets"] = [f"127.0.0.1:{port}"]
    return config


@contextmanager
def prometheus_server(workdir: Path, service_port: int) -> Iterator[Prometheus]:
    binary = tool("prometheus", "apt-get install prometheus")
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(scrape_config_for(service_port)))
    (workdir / "rules").symlink_to(PROM_DIR / "rules")  # the config's relative rule_files path
    port = free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=log,
        )
    prom = Prometheus(f"http://127.0.0.1:{port}")
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/-/ready", proc, log_path, timeout_s=60)
        yield prom
    finally:
        stop(proc)
        prom.http.close()


class Traffic:
    """A bounded burst of scoring traffic on 127.0.0.1, and what the service answered to it, from which
    the metrics are predicted.

    Two waves with a scrape between them: Prometheus's first sample of a series is its value at
    that scrape, so a counter born and grown between two scrapes shows no rate. The first wave
    creates the series, the second grows them, and every rate() of the dashboard then has data.
    """

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        # The spec's golden items (every task type, many notes) and a graph item; num_tokens so the
        # length component is scored.
        self.items = [{"id": c["id"], "completion": c["completion"], "reference": c["reference"]}
                      for c in golden_cases()]
        self.items.append({"id": "graph", "completion": GRAPH_GOOD, "reference": GRAPH_REF})
        self.task_of = {i["id"]: i["reference"]["task_type"] for i in self.items}
        self.results: list[dict[str, Any]] = []  # every result of every 200 response, cached ones too
        self.statuses: Counter[tuple[str, int]] = Counter()  # (route, HTTP status) -> requests
        self.reward_config_id = ""

    def score(self, num_tokens: int) -> list[dict[str, Any]]:
        body = {"items": [{**i, "num_tokens": num_tokens} for i in self.items]}
        response = self.client.post("/v1/rewards", json=body)
        self.statuses["/v1/rewards", response.status_code] += 1
        assert response.status_code == 200, response.text
        self.reward_config_id = response.json()["reward_config_id"]
        results: list[dict[str, Any]] = response.json()["results"]
        self.results += results
        return results

    def openrlhf(self, completion: str) -> None:
        """One /get_reward query (a multiple-choice item that earns no note)."""
        prompt = "Q: which side is the chair on?"
        response = self.client.post("/get_reward", json={"query": [prompt + completion], "prompts": [prompt],
                                                         "labels": [json.dumps(MC_REF)]})
        self.statuses["/get_reward", response.status_code] += 1
        assert response.status_code == 200, response.text

    def first_wave(self) -> None:
        self.score(num_tokens=400)
        self.openrlhf(GOOD)
        bad = {"items": [{"id": "bad", "completion": "x", "reference": {"task_type": "no_such_task"}}]}
        response = self.client.post("/v1/rewards", json=bad)
        self.statuses["/v1/rewards", response.status_code] += 1
        assert response.status_code == 422, response.text

    def second_wave(self) -> None:
        assert all(r["cached"] for r in self.score(num_tokens=400)), "a repeated request is answered from the cache"
        assert not any(r["cached"] for r in self.score(num_tokens=401)), "another num_tokens is another key"
        self.openrlhf(WRONG)

    def requests(self, route: str) -> int:
        return sum(n for (r, _), n in self.statuses.items() if r == route)


@dataclass
class Stack:
    prom: Prometheus
    traffic: Traffic
    instance: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tool("prometheus", "apt-get install prometheus")
    workdir = tmp_path_factory.mktemp("prometheus")
    with real_server() as (client, service):
        port = int(service.base_url.rsplit(":", 1)[1])
        with prometheus_server(workdir, port) as prom:
            traffic = Traffic(client)

            def scraped() -> bool:  # Prometheus holds the service's request counts as they are now
                got = prom.values(f'sum by (route) (reward_service_requests_total{{job="{JOB}"}})', "route")
                return all(got.get((route,)) == traffic.requests(route) for route in ("/v1/rewards", "/get_reward"))

            traffic.first_wave()
            prom.wait("a scrape after the first wave", scraped)
            traffic.second_wave()
            prom.wait("a scrape after the second wave", scraped)
            yield Stack(prom, traffic, f"127.0.0.1:{port}")
    shutil.rmtree(workdir, ignore_errors=True)


def test_target_is_up_with_the_projects_job(stack: Stack) -> None:
    assert stack.prom.values(f'up{{job="{JOB}"}}', "instance") == {(stack.instance,): 1.0}
    targets = stack.prom.api("targets")["activeTargets"]
    assert [(t["labels"]["job"], t["scrapeUrl"], t["health"]) for t in targets] == [
        (JOB, f"http://{stack.instance}/metrics", "up")]


def test_items_and_notes_counted_as_the_responses_say(stack: Stack) -> None:
    results, task_of = stack.traffic.results, stack.traffic.task_of
    expected_items = Counter((task_of[r["id"]], r["status"]) for r in results)
    expected_items["multiple_choice", "ok"] += stack.traffic.requests("/get_reward")  # one item each
    got = stack.prom.values(f'reward_service_items_total{{job="{JOB}"}}', "task_type", "status")
    assert got == {k: float(v) for k, v in expected_items.items()}

    # Notes are counted once per scored item, not for the answers taken from the cache.
    fresh = [r for r in results if not r["cached"]]
    expected_notes = Counter(n for r in fresh if r["status"] == "ok" for n in r["diagnostics"]["notes"])
    assert expected_notes, "the golden items should produce notes"
    notes = stack.prom.values(f'reward_service_notes_total{{job="{JOB}"}} > 0', "note")
    assert notes == {(note,): float(n) for note, n in expected_notes.items()}


def test_reward_and_component_histograms_labelled_by_task_and_component(stack: Stack) -> None:
    fresh = [r for r in stack.traffic.results if not r["cached"]]
    task_of = stack.traffic.task_of
    expected_pairs = {(task_of[r["id"]], name) for r in fresh if r["status"] == "ok"
                      for name, value in r["components"].items() if value is not None}
    assert {c for _, c in expected_pairs} == {"format", "answer", "graph_node", "graph_edge", "length"}
    pairs = set(stack.prom.values(f'count by (task_type, component) (reward_service_reward_component_bucket{{job="{JOB}"}})',
                                  "task_type", "component"))
    assert expected_pairs <= pairs  # the /get_reward item may add its own components

    buckets = stack.prom.values(f'reward_service_reward_bucket{{job="{JOB}", task_type="numerical"}}', "le")
    assert ("+Inf",) in buckets and len(buckets) > 5
    counts = stack.prom.values(f'reward_service_reward_count{{job="{JOB}"}}', "task_type")
    scored = Counter(task_of[r["id"]] for r in fresh if r["status"] == "ok")
    for task, n in scored.items():
        assert counts[(task,)] >= n
    assert counts[("numerical",)] == buckets[("+Inf",)]


def test_cache_lookups_and_build_info(stack: Stack) -> None:
    cache = stack.prom.values(f'reward_service_cache_requests_total{{job="{JOB}"}}', "result")
    assert set(cache) == {("hit",), ("miss",), ("error",)}
    results = stack.traffic.results
    assert cache[("hit",)] == sum(r["cached"] for r in results)
    misses = sum(not r["cached"] for r in results) + stack.traffic.requests("/get_reward")
    # + 1 at most: the invalid item may be looked up before the workers find its reference invalid.
    assert misses <= cache[("miss",)] <= misses + 1
    assert cache[("error",)] == 0
    build = stack.prom.query(f'reward_service_build_info{{job="{JOB}"}}')
    assert [b["metric"]["reward_config_id"] for b in build] == [stack.traffic.reward_config_id]
    codes = stack.prom.values(f'reward_service_requests_total{{job="{JOB}", route=~"/v1/rewards|/get_reward"}}',
                              "route", "code")
    assert codes == {(route, str(code)): float(n) for (route, code), n in stack.traffic.statuses.items()}


def test_every_alert_rule_evaluates_cleanly(stack: Stack) -> None:
    def rules() -> list[dict[str, Any]]:
        return [rule for group in stack.prom.api("rules")["groups"] for rule in group["rules"]]

    stack.prom.wait("a first evaluation of every rule", lambda: all(r["health"] != "unknown" for r in rules()))
    assert [(r["name"], r["health"], r.get("lastError", "")) for r in rules() if r["health"] != "ok"] == []
    alerts = {r["name"] for r in rules() if r["type"] == "alerting"}
    assert len(alerts) == 7
    firing = [r["name"] for r in rules() if r["type"] == "alerting" and r["state"] != "inactive"]
    assert firing == [], "a healthy service under light traffic must not alert"


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            out.append((f"{panel['title']} [{target['refId']}]", expr))
    return out


def test_dashboard_variables_find_the_service(stack: Stack) -> None:
    variables = {v["name"]: v for v in json.loads(DASHBOARD.read_text())["templating"]["list"]}
    assert variables["job"]["query"] == "label_values(reward_service_build_info, job)"
    jobs = stack.prom.api("label/job/values", **{"match[]": "reward_service_build_info"})
    assert JOB in jobs
    instances = stack.prom.api("label/instance/values", **{"match[]": f'reward_service_build_info{{job="{JOB}"}}'})
    assert instances == [stack.instance]


@pytest.mark.parametrize(("panel", "expr"), dashboard_queries(), ids=[p for p, _ in dashboard_queries()])
def test_dashboard_panel_returns_data(stack: Stack, panel: str, expr: str) -> None:
    response = stack.prom.http.get("/api/v1/query", params={"query": expr})
    body = response.json()
    assert body["status"] == "success", f"{panel}: {body.get('error')}"
    result = body["data"]["result"]
    assert result, f"{panel}: no data for {expr}"
    numbers = [float(r["value"][1]) for r in result]
    assert any(not math.isnan(n) for n in numbers), f"{panel}: only NaN for {expr}"

