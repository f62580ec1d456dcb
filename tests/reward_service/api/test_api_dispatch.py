"""The middleware calls the scoring routes' endpoints itself (ServiceMiddleware.dispatch, a fast path
past FastAPI's router): the same requests through FastAPI's own routing get the same answers."""

from __future__ import annotations

import contextlib
import warnings

import orjson
import pytest
from service_fixtures import GOOD, GRAPH_GOOD, GRAPH_REF, MC_REF, WRONG, item, settings, wait_ready

from reward_service.api.app import create_app

REQUESTS = [
    ("/v1/rewards", {}, {"items": [item("a", GOOD, group_id="g"), item("b", WRONG, group_id="g"),
                                   item("c", GRAPH_GOOD, GRAPH_REF, group_id="h")], "advantages": "grpo"}),
    ("/v1/rewards", {}, {"items": [item("a")], "explain": True, "config": {"weights": {"answer": 2.0}}}),
    ("/v1/rewards", {}, {"items": [item("a"), item("a")]}),  # duplicate ids: 422
    ("/v1/rewards", {}, {"items": [item("a", GOOD, {"task_type": "numerical", "answer": "x"})]}),  # bad reference
    ("/v1/rewards", {}, {"items": [{"id": "a"}]}),  # schema: 422
    ("/v1/rewards", {}, b"{not json"),
    ("/v1/rewards", {"content-type": "text/plain"}, {"items": [item("a")]}),
    ("/v1/rewards", {"authorization": "Bearer wrong"}, {"items": [item("a")]}),
    ("/v1/rewards", {"authorization": "Bearer key-a"}, {"items": [item("a")]}),
    ("/get_reward", {"authorization": "Bearer key-a"},
     {"query": ["p" + GOOD, "p" + WRONG], "prompts": ["p", "p"], "labels": [orjson.dumps(MC_REF).decode()] * 2}),
    ("/get_reward", {}, {"query": ["x"], "prompts": [], "labels": []}),
]


@contextlib.contextmanager
def client(direct: bool):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient
    app = create_app(settings(api_keys="key-a", workers=1))
    assert app.front.direct  # the scoring routes are dispatched by the middleware...
    if not direct:
        app.front.direct = {}  # ...unless told not to: then FastAPI routes them
    with TestClient(app, raise_server_exceptions=False) as c:
        wait_ready(c)
        yield c


def answers(direct: bool) -> list[tuple[int, dict[str, str], object]]:
    out = []
    with client(direct) as c:
        for path, headers, body in REQUESTS:
            auth = {} if "authorization" in headers else {"authorization": "Bearer key-a"}
            content = body if isinstance(body, bytes) else orjson.dumps(body)
            response = c.post(path, content=content, headers={"content-type": "application/json", **auth, **headers})
            kept = {k: v for k, v in response.headers.items() if k in ("content-type", "retry-after", "www-authenticate")}
            out.append((response.status_code, kept, response.json()))
    return out


def test_direct_dispatch_answers_as_fastapi_routing_does():
    direct, routed = answers(True), answers(False)
    assert [a[0] for a in direct] == [200, 200, 422, 422, 422, 400, 415, 401, 200, 200, 422]
    for (path, _, _), mine, theirs in zip(REQUESTS, direct, routed, strict=True):
        assert mine == theirs, path


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_on_a_scoring_path_still_get_fastapis_405(method):
    with client(True) as c:
        response = c.request(method, "/v1/rewards", headers={"authorization": "Bearer key-a"})
        assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
