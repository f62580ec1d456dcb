"""The middleware answers the scoring routes itself (ServiceMiddleware.answer, a fast path past
FastAPI's router): the same requests through FastAPI's own routing get the same answers."""

from __future__ import annotations

import contextlib
import warnings

import pytest
from service_fixtures import SCORING_REQUESTS, SCORING_STATUSES, scoring_answers, settings, wait_ready

from reward_service.api.app import create_app


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


def test_direct_dispatch_answers_as_fastapi_routing_does():
    with client(True) as c:
        direct = scoring_answers(c)
    with client(False) as c:
        routed = scoring_answers(c)
    assert [a[0] for a in direct] == SCORING_STATUSES
    for (path, _, _), mine, theirs in zip(SCORING_REQUESTS, direct, routed, strict=True):
        assert mine == theirs, path


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_on_a_scoring_path_still_get_fastapis_405(method):
    with client(True) as c:
        response = c.request(method, "/v1/rewards", headers={"authorization": "Bearer key-a"})
        assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
