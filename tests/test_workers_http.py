"""Deadlines through the HTTP API: a stuck item is `timeout` in a 200 answer, the service stays ready,
and OpenRLHF's protocol (which cannot mask) answers 503 with Retry-After instead of a silent 0."""

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


def test_openrlhf_answers_503_when_an_item_cannot_be_scored(client):
    label = orjson.dumps(MC_REF).decode()
    payload = {"query": ["p" + GOOD, "pSTUCK"], "prompts": ["p", "p"], "labels": [label, label]}
    response = client.post("/get_reward", json=payload)
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["code"] == "not_scored"
