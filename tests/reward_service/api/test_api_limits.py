"""Limits and refusals: body size and item count (413, before the body is parsed), queue (429),
not ready (503), and an unexpected fault (500 with the error body, no trace)."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import orjson
import pytest
from service_fixtures import SLOW_SCORER, in_process, item, real_server, settings


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code and body["error"]["message"]
    assert "Traceback" not in response.text
    return body


@pytest.fixture(scope="module")
def small():
    with in_process(settings(max_body_bytes=4000, max_items=3, max_queued_items=3)) as c:
        yield c


def test_declared_body_over_the_limit_is_413_without_reading_it(small):
    # Not JSON at all: a 413 rather than a 400 shows the body was refused before being parsed.
    assert_error(small.post("/v1/rewards", content=b"x" * 5000), 413, "payload_too_large")


def test_body_at_the_limit_is_read(small):
    body = orjson.dumps({"items": [item("a", "<answer>B</answer>" + " " * 100)]})
    assert len(body) < 4000
    assert small.post("/v1/rewards", content=body).status_code == 200


def test_more_items_than_the_limit_is_413_before_the_schema(small):
    # Four items that would each fail the schema: the count is checked first.
    assert_error(small.post("/v1/rewards", content=orjson.dumps({"items": [{}, {}, {}, {}]})), 413,
                 "payload_too_large")
    assert small.post("/v1/rewards", content=orjson.dumps({"items": [item("a"), item("b"), item("c")]})
                      ).status_code == 200


def test_openrlhf_item_limit(small):
    payload = {"query": ["a"] * 4, "prompts": ["a"] * 4, "labels": ["{}"] * 4}
    assert_error(small.post("/get_reward", content=orjson.dumps(payload)), 413, "payload_too_large")


def test_streamed_body_without_length_is_cut_at_the_limit():
    """Chunked upload through a real socket: no Content-Length, so the limit is counted as it arrives."""
    with real_server("--max-body-bytes", "20000") as (client, _):
        def chunks():
            yield b'{"items": ['
            for _ in range(100):
                yield b" " * 1000
            yield b"]}"
        assert_error(client.post("/v1/rewards", content=chunks()), 413, "payload_too_large")
        assert client.get("/readyz").status_code == 200  # and the service is fine


def test_queue_over_its_limit_is_429_with_retry_after():
    config = settings(workers=1, scorer=SLOW_SCORER, chunk_items=1, max_items=4, max_queued_items=4, cache="off")
    with in_process(config) as client:
        slow = {"items": [item(f"s{i}", "SLEEP 0.4 <answer>B</answer>") for i in range(4)]}
        first: dict[str, httpx.Response] = {}
        thread = threading.Thread(target=lambda: first.update(r=client.post("/v1/rewards", json=slow)))
        thread.start()
        pool = client.app.state.service.pool
        deadline = time.monotonic() + 5
        while pool.queued_items < 2:  # two items with the worker (the one it scores and the next), two waiting
            assert time.monotonic() < deadline
            time.sleep(0.005)
        body = {"items": [item("late-1"), item("late-2"), item("late-3")]}
        response = client.post("/v1/rewards", json=body)  # 2 queued + 3 > 4
        assert_error(response, 429, "overloaded")
        assert int(response.headers["retry-after"]) >= 1
        thread.join()
        assert first["r"].status_code == 200
        assert all(r["status"] == "ok" for r in first["r"].json()["results"])
        assert client.post("/v1/rewards", json=body).status_code == 200  # drained: accepted again


def test_503_while_starting_then_ready():
    config = settings(scorer="slow_start_scorer:score")
    with in_process(config, ready=False) as client:
        response = client.get("/readyz")
        assert_error(response, 503, "not_ready")
        assert client.get("/healthz").status_code == 200
        refused = client.post("/v1/rewards", json={"items": [item("a")]})
        assert_error(refused, 503, "not_ready")
        assert int(refused.headers["retry-after"]) >= 1
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert client.post("/v1/rewards", json={"items": [item("a")]}).status_code == 200


def test_a_scorer_that_cannot_load_leaves_the_service_not_ready(caplog):
    with caplog.at_level(logging.ERROR), in_process(settings(scorer="no_such_module:score"), ready=False) as client:
        deadline = time.monotonic() + 20
        while not any("could not start" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert_error(client.get("/readyz"), 503, "not_ready")
        assert client.get("/healthz").status_code == 200


def test_unexpected_fault_is_500_with_the_error_body_and_a_logged_request_id(caplog):
    with in_process(settings()) as client:
        service = client.app.state.service

        async def broken(*_args, **_kwargs):
            raise RuntimeError("boom: secret internals")

        service.lookup = broken
        with caplog.at_level(logging.ERROR):
            response = client.post("/v1/rewards", json={"items": [item("a")]}, headers={"x-request-id": "req-500"})
        body = assert_error(response, 500, "internal_error")
        assert "boom" not in response.text and "secret" not in body["error"]["message"]
        assert response.headers["x-request-id"] == "req-500"
        logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert any(getattr(r, "request_id", None) == "req-500" and r.exc_info for r in logged)
