"""The client's retry and error rules, on a scripted transport (httpx.MockTransport): which answers are
retried, Retry-After honoured, the budget bounded, and each error class with what it carries."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest

from trainer_client.client import (
    AsyncRewardClient,
    AuthenticationError,
    InvalidRequest,
    RewardClient,
    RewardServiceError,
    ServiceUnavailable,
    grpo_items,
)

REF = {"task_type": "multiple_choice", "answer": "B"}
LIMITS = {"max_items": 100, "max_body_bytes": 2**20}


def ok_body(request: httpx.Request) -> bytes:
    items = orjson.loads(request.content)["items"]
    return orjson.dumps({"reward_config_id": "x", "scorer_version": "0", "results": [
        {"id": i["id"], "group_id": i.get("group_id"), "status": "ok", "mask": False, "reward": 1.5,
         "components": {"format": 1.0, "answer": 0.5, "graph_node": None, "graph_edge": None, "length": None},
         "advantage": None, "cached": False, "diagnostics": {"notes": ["answer_unparsable"]}} for i in items]})


def error(status: int, code: str, headers: dict[str, str] | None = None, detail: list | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": f"{code} happened"}}
    if detail is not None:
        body["detail"] = detail
    return httpx.Response(status, content=orjson.dumps(body), headers=headers)


class Script:
    """Answers /v1/rewards from a list of responses (the last one repeats), and counts the calls."""

    def __init__(self, *answers: httpx.Response | str) -> None:
        self.answers = list(answers)
        self.calls: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/rewards"
        self.calls.append(time.monotonic())
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if answer == "ok":
            return httpx.Response(200, content=ok_body(request))
        if answer == "reset":
            raise httpx.ConnectError("connection refused", request=request)
        assert isinstance(answer, httpx.Response)
        return answer


def client(script: Script, **options) -> RewardClient:
    return RewardClient("http://rewards.test", transport=httpx.MockTransport(script), **LIMITS, **options)


ITEMS = [{"id": "a", "completion": "x", "reference": REF}]


def test_429_then_ok_waits_at_least_retry_after():
    script = Script(error(429, "overloaded", {"Retry-After": "1"}), "ok")
    with client(script) as c:
        result = c.score(ITEMS)[0]
    assert result.reward == 1.5 and result.notes == ("answer_unparsable",) and result.mask is False
    assert len(script.calls) == 2
    assert script.calls[1] - script.calls[0] >= 1.0


@pytest.mark.parametrize("first", [error(502, "bad_gateway"), error(503, "not_ready"), error(504, "timeout"),
                                   "reset"])
def test_transient_answers_are_retried(first):
    script = Script(first, first, "ok")
    with client(script) as c:
        assert c.score(ITEMS)[0].reward == 1.5
    assert len(script.calls) == 3


def test_attempts_are_bounded_and_the_last_cause_is_kept():
    script = Script(error(503, "draining", {"Retry-After": "0"}))
    with client(script, retry_attempts=4) as c, pytest.raises(ServiceUnavailable) as caught:
        c.score(ITEMS)
    assert len(script.calls) == 4
    assert caught.value.status_code == 503 and caught.value.code == "draining"
    assert caught.value.retry_after_s == 0.0
    assert "gave up after 4 attempts" in caught.value.message


def test_total_time_is_bounded_even_when_the_server_asks_for_a_long_wait():
    script = Script(error(429, "overloaded", {"Retry-After": "100"}))
    start = time.monotonic()
    with client(script, retry_max_s=5.0) as c, pytest.raises(ServiceUnavailable):
        c.score(ITEMS)
    assert time.monotonic() - start < 5.0  # it gave up rather than sleep past its budget
    assert len(script.calls) == 1


@pytest.mark.parametrize(("status", "exc_type"), [(401, AuthenticationError), (422, InvalidRequest),
                                                  (413, InvalidRequest), (400, InvalidRequest),
                                                  (500, RewardServiceError)])
def test_caller_errors_auth_errors_and_500s_are_never_retried(status, exc_type):
    script = Script(error(status, "nope"))
    with client(script) as c, pytest.raises(exc_type) as caught:
        c.score(ITEMS)
    assert len(script.calls) == 1
    assert caught.value.status_code == status and caught.value.code == "nope"
    assert type(caught.value) is exc_type  # 500 is the root class, not one of the specific ones


def test_invalid_request_names_the_callers_index_and_id_across_chunks():
    detail = [{"loc": ["body", "items", 1, "reference"], "msg": "bad answer", "type": "invalid_reference"}]
    script = Script("ok", error(422, "validation_error", detail=detail))
    items = [{"id": f"i{n}", "completion": "x", "reference": REF} for n in range(6)]
    with RewardClient("http://rewards.test", transport=httpx.MockTransport(script), max_items=3,
                      max_body_bytes=2**20, max_concurrency=1) as c, pytest.raises(InvalidRequest) as caught:
        c.score(items)
    assert caught.value.items == [(4, "i4")]  # item 1 of the second chunk
    assert caught.value.detail[0]["loc"] == ["body", "items", 4, "reference"]


def test_local_checks_catch_what_chunks_cannot_see():
    with client(Script("ok")) as c:
        with pytest.raises(InvalidRequest, match="duplicate id"):
            c.score([{"id": "a", "completion": "x", "reference": REF}] * 2)
        with pytest.raises(InvalidRequest, match="group_id") as caught:
            c.score(ITEMS, advantages="grpo")
        assert caught.value.items == [(0, "a")]


def test_a_body_that_breaks_the_contract_is_an_error_not_a_guess():
    script = Script(httpx.Response(200, content=b'{"results": []}'))
    with client(script) as c, pytest.raises(RewardServiceError, match="does not match"):
        c.score(ITEMS)


def test_byte_limit_splits_large_batches_and_each_request_fits():
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sizes.append(len(request.content))
        return httpx.Response(200, content=ok_body(request))

    items = [{"id": f"i{n}", "completion": "y" * 10_000, "reference": REF} for n in range(20)]
    with RewardClient("http://rewards.test", transport=httpx.MockTransport(handler), max_items=1000,
                      max_body_bytes=50_000) as c:
        results = c.score(items)
    assert [r.id for r in results] == [i["id"] for i in items]
    assert len(sizes) >= 5 and max(sizes) <= 50_000


def test_async_client_retries_the_same_way():
    script = Script("reset", error(503, "not_ready", {"Retry-After": "0"}), "ok")

    async def run():
        async with AsyncRewardClient("http://rewards.test", transport=httpx.MockTransport(script), **LIMITS) as c:
            return await c.score(ITEMS)

    assert asyncio.run(run())[0].reward == 1.5
    assert len(script.calls) == 3


def test_grpo_items_shape_and_checks():
    items = grpo_items([["a", "b"], ["c"]], [REF, REF], num_tokens=[[1, None], [3]])
    assert [(i["id"], i["group_id"], i.get("num_tokens")) for i in items] == [
        ("p0-0", "p0", 1), ("p0-1", "p0", None), ("p1-0", "p1", 3)]
    with pytest.raises(ValueError, match="references"):
        grpo_items([["a"]], [REF, REF])
