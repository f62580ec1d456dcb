"""The in-process benchmark runs end to end and prints its figures as one JSON object."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

KEYS = {"inprocess_items_per_s_per_core", "answer_only_items_per_s_per_core", "graph_items_per_s_per_core",
        "worst_case_item_ms", "ged_baseline_ratio", "ged_ratio_8_nodes", "ged_timeouts",
        "answer_only_floor_items_per_s", "graph_floor_items_per_s", "answer_only_share_of_floor",
        "graph_share_of_floor"}


def test_inprocess_bench_prints_figures():
    proc = subprocess.run(
        [sys.executable, "-m", "reward_service.cli", "bench", "--mode", "inprocess", "--items", "400",
         "--ged-pairs", "1", "--json"],
        capture_output=True, text=True, check=True, timeout=600,
    )
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(figures) >= KEYS
    for key in KEYS - {"ged_timeouts"}:
        assert figures[key] > 0, key
    assert figures["items"] == 400


def test_the_single_item_load_generator_posts_the_bodies_in_turn_and_every_one_is_answered(tmp_path):
    # `bench --mode http` drives one-item requests with wrk and this script: each body is formatted
    # once when the script loads; the service must answer every request 200 and see as many as wrk.
    import shutil
    import time

    from prometheus_client.parser import text_string_to_metric_families
    from service_fixtures import missing_tool, real_server

    from reward_service.cli.bench_http import run_wrk, single_item_bodies, wrk_script
    from reward_service.synth.mixes import standard_mix

    if shutil.which("wrk") is None:
        missing_tool("wrk", "apt-get install wrk")
    items = standard_mix(40, seed=3)[::8]  # one rollout of each group: five task types
    script = tmp_path / "single.lua"
    script.write_text(wrk_script(single_item_bodies(items)))
    with real_server("--cache", "off") as (client, service):
        requests, _ = run_wrk(service.base_url, str(script), seconds=1, connections=4)
        deadline = time.monotonic() + 10
        while True:  # until the requests wrk left in flight are answered (the scrape counts itself)
            samples = [s for f in text_string_to_metric_families(client.get("/metrics").text) for s in f.samples]
            inflight = sum(s.value for s in samples if s.name == "reward_service_inflight_requests")
            if inflight <= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    answered = sum(s.value for s in samples if s.name == "reward_service_requests_total"
                   and s.labels == {"route": "/v1/rewards", "code": "200"})
    items_answered = sum(s.value for s in samples if s.name == "reward_service_items_total")
    assert requests >= len(items)  # every body posted at least once in a second
    assert requests <= answered <= requests + 4  # wrk stops with at most one request in flight a connection
    assert items_answered == answered  # one item each
    tasks = {s.labels["task_type"] for s in samples if s.name == "reward_service_items_total" and s.value}
    assert tasks == {item["reference"]["task_type"] for item in items}  # each body in turn, not one again


@pytest.mark.parametrize(("mode", "absent"), [("inprocess", "scipy"), ("http", "fastapi")])
def test_bench_without_the_service_extra_says_so_at_once(monkeypatch, capsys, mode, absent):
    import importlib.util

    from reward_service.cli import main as cli_main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == absent else real(name, *a))
    assert cli_main.main(["bench", "--mode", mode]) == 2
    err = capsys.readouterr().err
    assert "[service] extra" in err and f"{absent} not installed" in err
