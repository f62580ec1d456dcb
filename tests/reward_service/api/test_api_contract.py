"""api.md route by route, through a real uvicorn socket and in process (the same tests run on both)."""

from __future__ import annotations

import math
import os
import re

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from service_fixtures import (
    GOOD,
    GRAPH_GOOD,
    GRAPH_REF,
    MC_REF,
    NUM_REF,
    WRONG,
    golden_cases,
    in_process,
    item,
    real_server,
    settings,
)

from reward_service.api.middleware import request_id
from reward_service.schemas import ConfigResponse, ErrorBody, OpenRLHFResponse, RewardsResponse
from reward_service.scoring import COMPONENTS, RewardConfig
from reward_service.version import SCORER_VERSION


@pytest.fixture(scope="module", params=["inprocess", "socket"])
def client(request):
    if request.param == "inprocess":
        with in_process(settings()) as c:
            yield c
    else:
        with real_server() as (c, _):
            yield c


def post(client, body, path="/v1/rewards", **kw):
    return client.post(path, content=orjson.dumps(body), headers={"content-type": "application/json", **kw})


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    ErrorBody.model_validate(body)
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert "Traceback" not in response.text
    return body


# ------------------------------------------------------------------------------------------ /v1/rewards


def test_rewards_result_shape_and_order(client):
    items = [item(f"r{i}", GOOD if i % 2 == 0 else WRONG, group_id="g") for i in range(9)]
    response = post(client, {"items": items})
    assert response.status_code == 200
    body = response.json()
    RewardsResponse.model_validate(body)
    assert body["scorer_version"] == SCORER_VERSION
    assert body["reward_config_id"] == RewardConfig.build().id
    assert [r["id"] for r in body["results"]] == [f"r{i}" for i in range(9)]
    for i, result in enumerate(body["results"]):
        assert list(result) == ["id", "group_id", "status", "mask", "reward", "components", "advantage", "cached",
                                "diagnostics"]
        assert result["group_id"] == "g"
        assert result["status"] == "ok" and result["mask"] is False
        assert result["reward"] == (2.0 if i % 2 == 0 else 1.0)
        assert set(result["components"]) == set(COMPONENTS)
        assert result["advantage"] is None
        assert result["diagnostics"]["notes"] == []


def test_rewards_match_the_golden_cases_to_1e9(client):
    cases = golden_cases()
    for case in cases:
        body = {"items": [item(case["id"], case["completion"], case["reference"],
                               **({"num_tokens": case["num_tokens"]} if case.get("num_tokens") is not None else {}))]}
        if case.get("config"):
            body["config"] = case["config"]
        result = post(client, body).json()["results"][0]
        assert result["status"] == "ok", case["id"]
        assert math.isclose(result["reward"], case["expected"]["reward"], abs_tol=1e-9), case["id"]
        for name, value in case["expected"]["components"].items():
            if value is None:
                assert result["components"][name] is None, (case["id"], name)
            else:
                assert math.isclose(result["components"][name], value, abs_tol=1e-9), (case["id"], name)


def test_completion_faults_are_zeros_with_notes_never_errors(client):
    items = [item("missing", "no tags at all"), item("graphless", GOOD, GRAPH_REF), item("empty", "")]
    results = post(client, {"items": items}).json()["results"]
    assert all(r["status"] == "ok" and r["mask"] is False for r in results)
    assert "answer_missing" in results[0]["diagnostics"]["notes"]
    assert "graph_missing" in results[1]["diagnostics"]["notes"]
    assert results[1]["components"]["graph_node"] == 0.0


def test_advantages_grpo_dr_grpo_rloo(client):
    items = [item("a", GOOD, group_id="g1"), item("b", WRONG, group_id="g1"), item("c", GOOD, group_id="g1"),
             item("solo", GOOD, group_id="g2")]
    rewards = [2.0, 1.0, 2.0]
    mean = sum(rewards) / 3
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / 2)
    expected = {
        "grpo": [(r - mean) / (std + 1e-6) for r in rewards],
        "dr_grpo": [r - mean for r in rewards],
        "rloo": [r - (sum(rewards) - r) / 2 for r in rewards],
    }
    for mode, want in expected.items():
        results = post(client, {"items": items, "advantages": mode}).json()["results"]
        got = [r["advantage"] for r in results]
        assert got[:3] == pytest.approx(want, abs=1e-12), mode
        assert got[3] == 0.0  # a group of one


def test_advantages_need_group_ids(client):
    body = assert_error(post(client, {"items": [item("a", group_id="g"), item("b")], "advantages": "grpo"}),
                        422, "validation_error")
    assert body["detail"][0]["loc"] == ["body", "items", 1, "group_id"]
    assert "item 1" in body["error"]["message"]


def test_invalid_reference_fails_the_request_naming_the_item(client):
    bad = {"task_type": "numerical", "answer": "four"}
    body = assert_error(post(client, {"items": [item("ok"), item("bad-one", GOOD, bad)]}), 422, "validation_error")
    assert "item 1" in body["error"]["message"] and "bad-one" in body["error"]["message"]
    assert body["detail"][0]["loc"] == ["body", "items", 1, "reference"]
    assert "answer" in body["detail"][0]["msg"]


def test_every_invalid_reference_is_named_in_item_order_and_nothing_is_cached():
    # References are validated in the workers, as they score: a batch spread over both workers and many
    # chunks still names every bad item, in order, and the good items' results are neither cached nor counted.
    with in_process(settings(chunk_items=4)) as client:
        bad = {"task_type": "box_iou", "answer": [0, 0, 1]}
        items = [item(f"i{i}", GOOD, bad if i in (5, 17, 30) else MC_REF) for i in range(40)]
        body = assert_error(post(client, {"items": items}), 422, "validation_error")
        assert [d["loc"] for d in body["detail"]] == [["body", "items", i, "reference"] for i in (5, 17, 30)]
        assert body["error"]["message"].startswith("item 5 (id 'i5'): invalid reference")
        assert scored_ok(client) == 0
        retry = post(client, {"items": [items[0]]}).json()["results"][0]
        assert retry["status"] == "ok" and retry["cached"] is False
        assert scored_ok(client) == 1


def scored_ok(client) -> float:
    families = text_string_to_metric_families(client.get("/metrics").text)
    return sum(s.value for f in families for s in f.samples if s.name == "reward_service_items_total"
               and s.labels == {"task_type": "multiple_choice", "status": "ok"})


@pytest.mark.parametrize("items, loc", [
    ([{"id": "a", "completion": 5, "reference": MC_REF}], ["body", "items", 0, "completion"]),
    ([{"id": "", "completion": "x", "reference": MC_REF}], ["body", "items", 0, "id"]),
    ([{"id": "x" * 129, "completion": "x", "reference": MC_REF}], ["body", "items", 0, "id"]),
    ([{"id": "a", "completion": "x", "reference": MC_REF, "num_tokens": -1}], ["body", "items", 0, "num_tokens"]),
    ([{"id": "a", "completion": "x", "reference": MC_REF, "num_tokens": "12"}], ["body", "items", 0, "num_tokens"]),
    ([{"id": "a", "completion": "x", "reference": MC_REF, "extra": 1}], ["body", "items", 0, "extra"]),
    ([{"id": "a", "completion": "x"}], ["body", "items", 0, "reference"]),
    ("nope", ["body", "items"]),
])
def test_schema_violations_are_422_with_detail(client, items, loc):
    body = assert_error(post(client, {"items": items}), 422, "validation_error")
    assert loc in [d["loc"] for d in body["detail"]]
    for issue in body["detail"]:
        assert set(issue) == {"loc", "msg", "type"}  # the offending input is never echoed


def test_duplicate_ids_are_422(client):
    body = assert_error(post(client, {"items": [item("same"), item("same")]}), 422, "validation_error")
    assert body["detail"][0]["loc"] == ["body", "items", 1, "id"]


@pytest.mark.parametrize("raw", [b"", b"{", b"[1,", b"\xff\xfe", b"{'items': []}"])
def test_bad_json_is_400(client, raw):
    assert_error(client.post("/v1/rewards", content=raw, headers={"content-type": "application/json"}),
                 400, "bad_json")


@pytest.mark.parametrize("body", [[], 3, None, {"items": []}])
def test_non_object_or_empty_bodies(client, body):
    response = post(client, body)
    if body == {"items": []}:
        assert response.status_code == 200 and response.json()["results"] == []
    else:
        assert_error(response, 422, "validation_error")


def test_config_override_applies_to_this_request_only(client):
    override = {"weights": {"answer": 3.0}}
    result = post(client, {"items": [item("a")], "config": override}).json()
    assert result["results"][0]["reward"] == 4.0
    assert result["reward_config_id"] == RewardConfig.build(override).id != RewardConfig.build().id
    plain = post(client, {"items": [item("a")]}).json()
    assert plain["results"][0]["reward"] == 2.0 and plain["reward_config_id"] == RewardConfig.build().id


@pytest.mark.parametrize("override, word", [
    ({"weights": {"answer": -1}}, "weights.answer"),
    ({"weights": {"bogus": 1}}, "weights.bogus"),
    ({"length": {"min_tokens": 600, "max_tokens": 500}}, "min_tokens"),
    ({"graph": {"angle_mode": "sideways"}}, "angle_mode"),
    ({"weights": {"answer": "1"}}, "weights.answer"),
    ({"weights": {"answer": True}}, "weights.answer"),
])
def test_invalid_config_override_is_422(client, override, word):
    body = assert_error(post(client, {"items": [item("a")], "config": override}), 422, "validation_error")
    assert body["detail"][0]["loc"] == ["body", "config"]
    assert word in body["error"]["message"]


def test_explain_adds_parsed_answer_graph_and_correspondence(client):
    results = post(client, {"items": [item("g", GRAPH_GOOD, GRAPH_REF)], "explain": True}).json()["results"]
    diagnostics = results[0]["diagnostics"]
    assert {"answer", "graph", "correspondence"} <= set(diagnostics)
    plain = post(client, {"items": [item("g", GRAPH_GOOD, GRAPH_REF)]}).json()["results"][0]["diagnostics"]
    assert set(plain) == {"notes"}


def test_num_tokens_gives_the_length_component(client):
    items = [item("in", num_tokens=400), item("out", num_tokens=10), item("none")]
    results = post(client, {"items": items}).json()["results"]
    assert [r["components"]["length"] for r in results] == [1.0, 0.0, None]


def test_retry_is_served_from_cache_with_the_same_rewards(client):
    body = {"items": [item("x1", GOOD + " ", NUM_REF | {"answer": 7.0}), item("x2", WRONG + "  ", NUM_REF)]}
    first = post(client, body).json()["results"]
    second = post(client, body).json()["results"]
    assert [r["cached"] for r in first] == [False, False]
    assert [r["cached"] for r in second] == [True, True]
    for a, b in zip(first, second, strict=True):
        assert {k: v for k, v in a.items() if k != "cached"} == {k: v for k, v in b.items() if k != "cached"}


def test_made_request_ids_are_32_hex_digits_unique_and_a_forked_process_makes_its_own():
    ids = [request_id(None)[0] for _ in range(3)]
    assert all(re.fullmatch("[0-9a-f]{32}", i) for i in ids) and len(set(ids)) == 3
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its ids must not repeat the parent's (a counter from the same start would)
        os.write(write, request_id(None)[0].encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert re.fullmatch("[0-9a-f]{32}", child) and child[:16] != ids[0][:16]


def test_request_id_is_echoed_or_made(client):
    response = post(client, {"items": []}, **{"x-request-id": "trace-abc-123"})
    assert response.headers["x-request-id"] == "trace-abc-123"
    made = client.get("/healthz").headers["x-request-id"]
    assert len(made) >= 16 and made != client.get("/healthz").headers["x-request-id"]
    assert client.post("/v1/rewards", content=b"{").headers["x-request-id"]  # errors carry one too
    assert client.get("/nowhere", headers={"x-request-id": "bad id with spaces"}).headers["x-request-id"] != (
        "bad id with spaces")


# ------------------------------------------------------------------------------------------ /get_reward


def test_get_reward_openrlhf_protocol(client):
    prompts = ["<|user|>Where is the chair?<|assistant|>", "Q2:", "unrelated prompt"]
    query = [prompts[0] + GOOD, prompts[1] + WRONG, "the response lacks the prompt " + GOOD]
    labels = [orjson.dumps(MC_REF).decode(), orjson.dumps(MC_REF).decode(), orjson.dumps(MC_REF).decode()]
    response = post(client, {"query": query, "prompts": prompts, "labels": labels}, path="/get_reward")
    assert response.status_code == 200, response.text
    body = response.json()
    OpenRLHFResponse.model_validate(body)
    # Prompt removed: format 1 for the first two; the third keeps its leading text, so format 0.
    assert body["rewards"] == [2.0, 1.0, 1.0]
    assert body["scores"] == [1.0, 1.0, 1.0]
    assert set(body["extra_logs"]) == {*COMPONENTS, "masked"}
    assert body["extra_logs"]["masked"] == [0.0, 0.0, 0.0]
    assert body["extra_logs"]["format"] == [1.0, 1.0, 0.0]
    assert body["extra_logs"]["answer"] == [1.0, 0.0, 1.0]
    assert all(len(v) == 3 for v in body["extra_logs"].values())


def test_get_reward_scores_are_clipped(client):
    label = orjson.dumps(NUM_REF).decode()
    body = post(client, {"query": ["p<answer>0</answer>"], "prompts": ["p"], "labels": [label]},
                path="/get_reward").json()
    assert body["rewards"] == [0.0] and body["scores"] == [0.0]


@pytest.mark.parametrize("payload, code", [
    ({"query": ["a"], "prompts": [], "labels": ["{}"]}, "validation_error"),
    ({"query": ["a"], "prompts": ["a"], "labels": ["{not json"]}, "validation_error"),
    ({"query": ["a"], "prompts": ["a"], "labels": ['{"task_type": "box_iou", "answer": [1, 1, 0, 0]}']},
     "validation_error"),
    ({"query": "a", "prompts": ["a"], "labels": ["{}"]}, "validation_error"),
    ({"query": ["a"]}, "validation_error"),
])
def test_get_reward_rejects_bad_requests(client, payload, code):
    body = assert_error(post(client, payload, path="/get_reward"), 422, code)
    assert body["detail"]


# ------------------------------------------------------------------------------------------ other routes


def test_probes(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_config_route(client):
    body = client.get("/v1/config").json()
    ConfigResponse.model_validate(body)
    assert body["config"] == RewardConfig.build().to_dict()
    assert body["reward_config_id"] == RewardConfig.build().id and body["scorer_version"] == SCORER_VERSION
    assert body["limits"] == {"max_items": 4096, "max_body_bytes": 64 * 2**20}  # the defaults


def test_metrics_at_exactly_that_path(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "reward_service_requests_total" in response.text
    assert_error(client.get("/metrics/"), 404, "not_found")  # no redirect to or from a slash


def test_unknown_route_and_wrong_method_have_the_error_body(client):
    assert_error(client.get("/v2/nothing"), 404, "not_found")
    assert_error(client.get("/v1/rewards"), 405, "method_not_allowed")


def test_openapi_describes_every_route(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert {"/v1/rewards", "/get_reward", "/healthz", "/readyz", "/metrics", "/v1/config"} <= set(paths)
    for path in ("/v1/rewards", "/get_reward"):
        operation = paths[path]["post"]
        assert {"200", "400", "401", "408", "413", "415", "422", "429", "503"} <= set(operation["responses"])
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.rsplit("/", 1)[1] in schema["components"]["schemas"]
    assert "securitySchemes" not in schema["components"]  # no key configured: no auth declared
