"""Deadlines through the HTTP API: a stuck item is `timeout` in a 200 answer, the service stays ready.
OpenRLHF's protocol, which cannot mask, answers an item that failed on its own 0.0 flagged in
`extra_logs.masked`, and a fault of the service's state 503 with Retry-After (api.md)."""

from __future__ import annotations

import time

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from service_fixtures import GOOD, MC_REF, SLOW_SCORER, in_process, item, settings


@pytest.fixture(scope="module")
def client():
    with in_process(settings(scorer=SLOW_SCORER, item_deadline_s=0.5, request_deadline_s=3.0)) as c:
        yield c


def metric(client, name, **labels):
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def test_stuck_item_times_out_and_the_batch_is_unaffected(client):
    before = metric(client, "reward_service_worker_restarts_total", reason="item_deadline")
    items = [item(f"a{i}", group_id="g") for i in range(5)] + [item("stuck", "STUCK", group_id="g")] + \
        [item(f"b{i}", group_id="g") for i in range(5)]
    start = time.monotonic()
    response = client.post("/v1/rewards", json={"items": items, "advantages": "grpo"})
    assert response.status_code == 200
    assert time.monotonic() - start < 2.5
    results = {r["id"]: r for r in response.json()["results"]}
    stuck = results.pop("stuck")
    assert stuck["status"] == "timeout" and stuck["mask"] is True
    assert stuck["reward"] is None and stuck["advantage"] is None and stuck["cached"] is False
    assert all(r["status"] == "ok" and r["reward"] == 2.0 and r["advantage"] == 0.0 for r in results.values())
    assert metric(client, "reward_service_worker_restarts_total", reason="item_deadline") == before + 1
    assert metric(client, "reward_service_items_total", task_type="multiple_choice", status="timeout") >= 1
    assert client.get("/readyz").status_code == 200


def test_a_timeout_is_not_cached(client):
    body = {"items": [item("stuck-again", "STUCK")]}
    first = client.post("/v1/rewards", json=body).json()["results"][0]
    second = client.post("/v1/rewards", json=body).json()["results"][0]
    assert first["status"] == second["status"] == "timeout"
    assert second["cached"] is False


def test_request_deadline_answers_the_unfinished_items_timeout(client):
    items = [item(f"s{i}", f"SLEEP 0.4 {GOOD}") for i in range(16)]
    start = time.monotonic()
    results = client.post("/v1/rewards", json={"items": items}).json()["results"]
    assert time.monotonic() - start < 5.0
    statuses = [r["status"] for r in results]
    assert "ok" in statuses and "timeout" in statuses
    assert all(r["mask"] == (r["status"] != "ok") for r in results)
    assert metric(client, "reward_service_worker_restarts_total", reason="request_deadline") >= 1


def test_openrlhf_answers_an_item_that_fails_on_its_own_zero_flagged_masked(client):
    label = orjson.dumps(MC_REF).decode()
    before_timeout = metric(client, "reward_service_items_total", task_type="multiple_choice", status="timeout") or 0
    before_error = metric(client, "reward_service_items_total", task_type="multiple_choice", status="error") or 0
    payload = {"query": ["p" + GOOD, "pSTUCK", "pRAISE x"], "prompts": ["p", "p", "p"], "labels": [label] * 3}
    response = client.post("/get_reward", json=payload)
    assert response.status_code == 200
    body = response.json()
    assert body["rewards"] == [2.0, 0.0, 0.0]
    assert body["scores"] == [1.0, 0.0, 0.0]
    assert body["extra_logs"]["masked"] == [0.0, 1.0, 1.0]
    assert body["extra_logs"]["format"] == [1.0, 0.0, 0.0]
    # counted as masked: one timeout (the item deadline) and one error (the scorer raised)
    assert metric(client, "reward_service_items_total", task_type="multiple_choice", status="timeout") == \
        before_timeout + 1
    assert metric(client, "reward_service_items_total", task_type="multiple_choice", status="error") == \
        before_error + 1


def test_openrlhf_answers_503_when_the_request_deadline_passes(client):
    """The request deadline (3 s here) spent on slow items is the service's state: OpenRLHF retries."""
    label = orjson.dumps(MC_REF).decode()
    n = 16  # not the completions of the test above, whose scored items are cached
    payload = {"query": [f"pSLEEP 0.45 {GOOD}"] * n, "prompts": ["p"] * n, "labels": [label] * n}
    response = client.post("/get_reward", json=payload)
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["code"] == "not_scored"
