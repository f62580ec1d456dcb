"""Inputs found by probing the service as an attacker would (issue 11): each is answered as api.md
says, before any work is queued where it can be, and never costs another client anything."""

from __future__ import annotations

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from service_fixtures import GOOD, MC_REF, WRONG, in_process, item, settings


@pytest.fixture(scope="module")
def client(service_client):
    return service_client


def post(client, body, path="/v1/rewards", **headers):
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(path, content=content, headers={"content-type": "application/json", **headers})


def metric_sum(client, name: str) -> float:
    families = text_string_to_metric_families(client.get("/metrics").text)
    return sum(s.value for f in families for s in f.samples if s.name == name)


def nested(depth: int) -> list:
    return orjson.loads("[" * depth + "]" * depth)


def deep_text(depth: int) -> str:
    """JSON text of a list nested `depth` deep (past what orjson.dumps writes)."""
    return "[" * depth + "]" * depth


def assert_invalid_reference(response, loc):
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"]["code"] == "validation_error" and "invalid reference" in body["error"]["message"]
    assert body["detail"][0]["loc"] == loc and body["detail"][0]["type"] == "invalid_reference"


# -------------------------------------------------------------------- 1. deep or huge references


def test_a_reference_nested_500_deep_in_an_extra_key_is_a_422_and_costs_no_worker(client):
    restarts = metric_sum(client, "reward_service_worker_restarts_total")
    # The reproduction: {"items":[{"id":"a","completion":"x","reference":{..., "x": [[[...]]]}}]}
    deep = orjson.dumps({**MC_REF, "x": 0}).replace(b'"x":0', b'"x":' + deep_text(500).encode())
    body = b'{"items":[%s,{"id":"deep","completion":"x","reference":%s},%s]}' % (
        orjson.dumps(item("a")), deep, orjson.dumps(item("c")))
    response = post(client, body)
    assert_invalid_reference(response, ["body", "items", 1, "reference"])
    assert "deeper than 64" in response.json()["detail"][0]["msg"]
    assert metric_sum(client, "reward_service_worker_restarts_total") == restarts
    ok = post(client, {"items": [item("after")]})
    assert ok.status_code == 200 and ok.json()["results"][0]["status"] == "ok"


def test_a_reference_graph_nested_1000_deep_is_a_422(client):
    reference = orjson.dumps(MC_REF)[:-1] + b',"graph":{"nodes":%s}}' % deep_text(1000).encode()
    response = post(client, b'{"items":[{"id":"g","completion":"x","reference":%s}]}' % reference)
    assert_invalid_reference(response, ["body", "items", 0, "reference"])


def test_a_deep_openrlhf_label_is_a_422(client):
    label = orjson.dumps(MC_REF).decode()[:-1] + ',"x":' + deep_text(500) + "}"
    response = post(client, {"query": ["p" + GOOD], "prompts": ["p"], "labels": [label]}, "/get_reward")
    assert_invalid_reference(response, ["body", "labels", 0])


def test_a_reference_over_1_mib_is_a_422_and_64_levels_are_fine(client):
    big = {**MC_REF, "question": "x" * (1 << 20)}
    assert_invalid_reference(post(client, {"items": [item("big", GOOD, big)]}), ["body", "items", 0, "reference"])
    at_limit = {**MC_REF, "x": nested(63)}  # the reference object is level 1
    response = post(client, {"items": [item("ok", GOOD, at_limit)]})
    assert response.status_code == 200 and response.json()["results"][0]["reward"] == 2.0


# -------------------------------------------------------------------- 2. weights that overflow


@pytest.mark.parametrize("advantages", [None, "grpo"])
def test_weights_that_can_overflow_the_total_are_a_422(client, advantages):
    weights = dict.fromkeys(("format", "answer", "graph_node", "graph_edge", "length"), 1e308)
    body = {"items": [item("a", group_id="g"), item("b", group_id="g")], "config": {"weights": weights}}
    if advantages:
        body["advantages"] = advantages
    response = post(client, body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "config"]
    assert "weights." in response.json()["error"]["message"]


def test_the_largest_weights_allowed_give_finite_rewards_and_advantages(client):
    weights = dict.fromkeys(("format", "answer", "graph_node", "graph_edge", "length"), 1e6)
    body = {"items": [item("a", group_id="g"), item("b", WRONG, group_id="g")],
            "config": {"weights": weights}, "advantages": "grpo"}
    results = post(client, body).json()["results"]
    assert [r["reward"] for r in results] == [2e6, 1e6]
    assert all(r["status"] == "ok" and abs(r["advantage"]) > 0.7 for r in results)


# -------------------------------------------------------------------- 3. completions over the limit


def test_a_20_mb_completion_is_answered_completion_too_large_without_reaching_a_worker():
    with in_process(settings(item_deadline_s=0.05, cache="off")) as client:
        huge = "<think>" + "x" * 20_000_000 + "</think><answer>B</answer>"
        response = post(client, {"items": [item("huge", huge), item("small")]})
        assert response.status_code == 200, response.text
        huge_result, small = response.json()["results"]
        assert huge_result["status"] == "ok" and huge_result["reward"] == 0.0
        assert huge_result["diagnostics"]["notes"] == ["completion_too_large"]
        assert small["status"] == "ok" and small["reward"] == 2.0
        assert metric_sum(client, "reward_service_worker_restarts_total") == 0
        # Scored in the service process: the workers' per-item timing saw only the small item.
        assert metric_sum(client, "reward_service_item_scoring_duration_seconds_count") == 1



# -------------------------------------------------------------------- 7. smaller


def test_openapi_declares_bearer_auth_only_when_keys_are_configured(client):
    document = client.get("/openapi.json").json()
    assert "securitySchemes" not in document["components"]
    assert not any("security" in op for ops in document["paths"].values() for op in ops.values())
    with in_process(settings(api_keys="key-a")) as keyed:
        document = keyed.get("/openapi.json").json()
        assert "HTTPBearer" in document["components"]["securitySchemes"]
        assert document["paths"]["/v1/rewards"]["post"]["security"] == [{"HTTPBearer": []}]


@pytest.mark.parametrize("path", ["/v1/rewards", "/get_reward"])
@pytest.mark.parametrize(("content_type", "content"), [
    ("text/plain", orjson.dumps({"items": [item("a")]})),
    ("application/x-www-form-urlencoded", b"items=a"),
    ("multipart/form-data; boundary=x", b"--x--"),
])
def test_bodies_that_are_not_json_are_415(client, path, content_type, content):
    response = client.post(path, content=content, headers={"content-type": content_type})
    assert response.status_code == 415, response.text
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert response.headers["x-request-id"]


def test_json_with_a_charset_is_fine(client):
    response = client.post("/v1/rewards", content=orjson.dumps({"items": [item("a")]}),
                           headers={"content-type": "application/json; charset=utf-8"})
    assert response.status_code == 200


def test_standard_mix_items_post_as_they_are(client):
    # They carried an extra `quality` key that the strict schema refuses (422); now they are ready to post.
    from reward_service.synth.mixes import standard_mix

    items = standard_mix(24, seed=3)
    response = post(client, {"items": items, "advantages": "grpo"})
    assert response.status_code == 200, response.text[:500]
    assert [r["id"] for r in response.json()["results"]] == [it["id"] for it in items]
