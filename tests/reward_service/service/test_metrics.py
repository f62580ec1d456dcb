"""Prometheus metrics: names under reward_service_, conventions, bounded labels, values that add up."""

from __future__ import annotations

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from service_fixtures import GOOD, GRAPH_GOOD, GRAPH_REF, MC_REF, NUM_REF, in_process, item, settings

from reward_service.api.app import create_app
from reward_service.scoring import COMPONENTS, NOTE_WORDS, RewardConfig
from reward_service.version import SCORER_VERSION


def scrape(client):
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    return families


def samples(families, name, **labels):
    return [s for f in families.values() for s in f.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def value(families, name, **labels):
    return sum(s.value for s in samples(families, name, **labels))


@pytest.fixture(scope="module")
def scraped():
    with in_process(settings()) as client:
        batch = {"items": [item("g", GRAPH_GOOD, GRAPH_REF), item("m", GOOD), item("n", "no answer here", NUM_REF)]}
        client.post("/v1/rewards", json=batch)
        client.post("/v1/rewards", json=batch)  # all three from the cache
        label = orjson.dumps(MC_REF).decode()
        client.post("/get_reward", json={"query": ["p" + GOOD + " "], "prompts": ["p"], "labels": [label]})
        client.post("/v1/rewards", content=b"{")
        for i in range(40):
            client.get(f"/random/{i}")
        yield scrape(client)


def test_every_metric_is_prefixed_and_follows_conventions(scraped):
    for name, family in scraped.items():
        assert name.startswith("reward_service_"), name
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples), name
        if family.type == "histogram" and "duration" in name:
            assert name.endswith("_seconds"), name


def test_requests_by_route_and_code_with_bounded_labels(scraped):
    assert value(scraped, "reward_service_requests_total", route="/v1/rewards", code="200") == 2
    assert value(scraped, "reward_service_requests_total", route="/v1/rewards", code="400") == 1
    assert value(scraped, "reward_service_requests_total", route="/get_reward", code="200") == 1
    assert value(scraped, "reward_service_requests_total", route="other", code="404") == 40
    routes = {s.labels["route"] for s in samples(scraped, "reward_service_requests_total")}
    known = set(create_app(settings()).openapi()["paths"])  # the labels are the app's own paths
    assert routes <= known | {"other", "/openapi.json", "/docs", "/redoc"}
    assert value(scraped, "reward_service_request_duration_seconds_count", route="/v1/rewards") == 3
    assert samples(scraped, "reward_service_request_duration_seconds_bucket", route="/v1/rewards", le="+Inf")


def test_items_by_task_type_and_status_count_cached_items_too(scraped):
    assert value(scraped, "reward_service_items_total", task_type="multiple_choice", status="ok") == 5
    assert value(scraped, "reward_service_items_total", task_type="numerical", status="ok") == 2


def test_scoring_and_reward_histograms_describe_scored_items(scraped):
    # Scored (not cached): the three items of the first batch and the OpenRLHF item.
    assert value(scraped, "reward_service_item_scoring_duration_seconds_count") == 4
    assert value(scraped, "reward_service_reward_count") == 4
    for component in ("format", "answer"):
        assert value(scraped, "reward_service_reward_component_count", component=component) == 4
    assert value(scraped, "reward_service_reward_component_count", component="graph_node") == 1
    assert value(scraped, "reward_service_reward_component_count", component="length") == 0
    # The OpenRLHF completion ends with a space after </answer>: still format 1 (whitespace is stripped).
    fmt = dict(task_type="multiple_choice", component="format")
    assert value(scraped, "reward_service_reward_component_bucket", le="0.9", **fmt) == 0
    assert value(scraped, "reward_service_reward_component_bucket", le="1.0", **fmt) == 3
    components = {s.labels["component"] for s in samples(scraped, "reward_service_reward_component_count")}
    assert components <= set(COMPONENTS)


def test_a_counter_for_each_note_word(scraped):
    notes = {s.labels["note"]: s.value for s in samples(scraped, "reward_service_notes_total")}
    assert set(NOTE_WORDS) <= set(notes)
    assert notes["answer_missing"] == 1


def test_cache_requests_by_result(scraped):
    assert value(scraped, "reward_service_cache_requests_total", result="hit") == 3
    assert value(scraped, "reward_service_cache_requests_total", result="miss") == 4
    assert value(scraped, "reward_service_cache_requests_total", result="error") == 0


def test_gauges_restarts_and_build_info(scraped):
    assert value(scraped, "reward_service_inflight_requests") == 1  # the scrape itself
    assert value(scraped, "reward_service_inflight_items") == 0
    assert value(scraped, "reward_service_queued_items") == 0
    assert value(scraped, "reward_service_workers") == 2
    assert {s.labels["reason"] for s in samples(scraped, "reward_service_worker_restarts_total")} == {
        "item_deadline", "request_deadline", "crash"}
    info = samples(scraped, "reward_service_build_info")
    assert len(info) == 1 and info[0].value == 1
    assert info[0].labels["scorer_version"] == SCORER_VERSION
    assert info[0].labels["reward_config_id"] == RewardConfig.build().id


def test_request_durations_are_bucketed_as_prometheus_does():
    # RequestMetrics counts without prometheus_client's Histogram: a value equal to a bound is in that
    # bound's bucket (le), buckets are cumulative, and every route shown from the start reads zero.
    from prometheus_client import CollectorRegistry, generate_latest

    from reward_service.service.metrics import RequestMetrics

    metrics, registry = RequestMetrics(), CollectorRegistry()
    registry.register(metrics)
    metrics.add_routes(["/v1/rewards", "/healthz"])
    for seconds in (0.005, 0.0051, 0.3, 100.0):
        metrics.count("/v1/rewards", 200, seconds)
    metrics.count("/v1/rewards", 429, 0.001)
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}

    def bucket(le, route="/v1/rewards"):
        return value(families, "reward_service_request_duration_seconds_bucket", route=route, le=le)

    assert [bucket("0.005"), bucket("0.01"), bucket("0.25"), bucket("0.5"), bucket("60.0"), bucket("+Inf")] == \
        [2, 3, 3, 4, 4, 5]
    assert value(families, "reward_service_request_duration_seconds_sum", route="/v1/rewards") == \
        pytest.approx(0.005 + 0.0051 + 0.3 + 100.0 + 0.001)
    assert value(families, "reward_service_request_duration_seconds_count", route="/healthz") == 0
    assert bucket("+Inf", "/healthz") == 0
    assert value(families, "reward_service_requests_total", route="/v1/rewards", code="200") == 4
    assert value(families, "reward_service_requests_total", route="/v1/rewards", code="429") == 1
