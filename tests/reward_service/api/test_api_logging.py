"""Structured JSON logs carry the request id and never a completion, a reference or a key."""

from __future__ import annotations

import json
import logging

import orjson
import pytest
from service_fixtures import in_process, item, settings

from reward_service.service.logs import JSONFormatter, request_id_var

SECRET_COMPLETION = "<think>SECRET-COMPLETION-7f3a</think><answer>B</answer>"
SECRET_REF = {"task_type": "multiple_choice", "answer": "B", "question": "SECRET-REFERENCE-91c2"}
BAD_REF = {"task_type": "numerical", "answer": "SECRET-BAD-REFERENCE-55aa"}
KEY = "SECRET-KEY-c0ffee-0123456789"


def formatted(records):
    formatter = JSONFormatter()
    return [formatter.format(r) for r in records]


def test_json_lines_with_request_id():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.fields = {"status": 200}
    token = request_id_var.set("rid-1")
    try:
        line = JSONFormatter().format(record)
    finally:
        request_id_var.reset(token)
    entry = json.loads(line)
    assert entry["msg"] == "hello world" and entry["request_id"] == "rid-1" and entry["status"] == 200
    assert entry["level"] == "info" and entry["ts"].endswith("Z")


@pytest.mark.parametrize("scenario", ["ok", "invalid_reference", "bad_json", "wrong_key", "get_reward"])
def test_no_completion_reference_or_key_in_any_log_line(scenario, caplog):
    with caplog.at_level(logging.DEBUG), in_process(settings(api_keys=KEY, workers=1)) as client:
        auth = {"authorization": f"Bearer {KEY}", "x-request-id": f"rid-{scenario}"}
        if scenario == "ok":
            response = client.post("/v1/rewards", json={"items": [item("a", SECRET_COMPLETION, SECRET_REF)]},
                                   headers=auth)
        elif scenario == "invalid_reference":
            response = client.post("/v1/rewards", json={"items": [item("a", SECRET_COMPLETION, BAD_REF)]},
                                   headers=auth)
        elif scenario == "bad_json":
            response = client.post("/v1/rewards", content=b'{"items": ["SECRET-COMPLETION-7f3a', headers=auth)
        elif scenario == "wrong_key":
            response = client.post("/v1/rewards", json={"items": []}, headers={"authorization": f"Bearer {KEY}x"})
        else:
            response = client.post("/get_reward", headers=auth, json={
                "query": ["p" + SECRET_COMPLETION], "prompts": ["p"], "labels": [orjson.dumps(SECRET_REF).decode()]})
        assert response.status_code in (200, 400, 401, 422)
    lines = formatted(caplog.records)
    text = "\n".join(lines)
    for secret in ("SECRET-COMPLETION", "SECRET-REFERENCE", "SECRET-BAD-REFERENCE", "SECRET-KEY"):
        assert secret not in text, (scenario, secret)
    access = [json.loads(line) for line in lines if '"reward_service.access"' in line]
    assert access and all({"request_id", "route", "status", "duration_ms"} <= set(a) for a in access)
    if scenario != "wrong_key":
        assert any(a["request_id"] == f"rid-{scenario}" for a in access)
