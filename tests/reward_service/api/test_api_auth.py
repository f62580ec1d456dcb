"""Bearer-token auth on every protected route (none, wrong, right key), open probes and metrics."""

from __future__ import annotations

import logging

import orjson
import pytest
from service_fixtures import MC_REF, in_process, item, real_server, settings

from reward_service.api.deps import key_matches

KEYS = ["key-one-0123456789", "key-two-9876543210"]
PROTECTED = [
    ("POST", "/v1/rewards", {"items": [item("a")]}),
    ("POST", "/get_reward", {"query": ["p<answer>B</answer>"], "prompts": ["p"], "labels": [orjson.dumps(MC_REF).decode()]}),
    ("GET", "/v1/config", None),
]
OPEN = ["/healthz", "/readyz", "/metrics", "/openapi.json"]


@pytest.fixture(scope="module")
def client():
    with in_process(settings(api_keys=",".join(KEYS))) as c:
        yield c


def call(client, method, path, body, headers=None):
    content = orjson.dumps(body) if body is not None else None
    return client.request(method, path, content=content, headers=headers or {})


@pytest.mark.parametrize("method, path, body", PROTECTED)
@pytest.mark.parametrize("auth", [None, "Bearer wrong-key", "Bearer key-one", "Basic a2V5LW9uZQ==", "Bearer ", "key-one-0123456789"])
def test_missing_or_wrong_key_is_401(client, method, path, body, auth):
    response = call(client, method, path, body, {"authorization": auth} if auth is not None else {})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("method, path, body", PROTECTED)
@pytest.mark.parametrize("key", KEYS)
def test_every_configured_key_works(client, method, path, body, key):
    response = call(client, method, path, body, {"authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", OPEN)
def test_probes_and_metrics_need_no_key(client, path):
    assert client.get(path).status_code == 200


def test_auth_is_checked_before_the_body(client):
    response = client.post("/v1/rewards", content=b"{not json")
    assert response.status_code == 401  # not 400: an anonymous caller learns nothing about parsing


def test_keys_never_reach_the_logs(client, caplog):
    with caplog.at_level(logging.DEBUG):
        for key in (*KEYS, "Bearer-attempt-secret"):
            call(client, "GET", "/v1/config", None, {"authorization": f"Bearer {key}"})
    text = "\n".join(r.getMessage() + str(getattr(r, "fields", "")) for r in caplog.records)
    assert caplog.records  # the access log did write lines
    for key in (*KEYS, "Bearer-attempt-secret"):
        assert key not in text


def test_key_compare_is_exact():
    keys = [k.encode() for k in KEYS]
    assert key_matches(KEYS[1].encode(), keys)
    assert not key_matches(KEYS[1][:-1].encode(), keys)
    assert not key_matches(KEYS[1].encode() + b"x", keys)
    assert not key_matches(b"", keys)


def test_api_key_flags_through_a_real_socket():
    with real_server("--api-key", "flag-key-1", "--api-key", "flag-key-2") as (client, _):
        assert client.get("/v1/config").status_code == 401
        assert client.get("/v1/config", headers={"authorization": "Bearer flag-key-2"}).status_code == 200
        assert client.get("/readyz").status_code == 200
