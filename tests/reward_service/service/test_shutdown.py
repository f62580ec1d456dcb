"""SIGTERM on a real `reward-service serve` process: /readyz turns 503, the request in flight finishes
with every item scored, new scoring requests are refused, then the process and its workers exit."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from service_fixtures import GOOD, SLOW_SCORER, item, real_server

pytestmark = pytest.mark.slow


def processes_with(marker: str) -> list[int]:
    """Pids whose environment holds `marker` (the service, its forkserver and its workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_sigterm_drains_in_flight_work_then_exits():
    marker = f"REWARD_TEST_MARKER={uuid.uuid4().hex}"
    env = {"REWARD_SERVICE_SCORER": SLOW_SCORER, marker.split("=")[0]: marker.split("=")[1]}
    with real_server("--workers", "2", "--cache", "off", env=env) as (client, service):
        assert len(processes_with(marker)) >= 3  # service, forkserver, workers
        items = [item(f"slow{i}", f"SLEEP 0.5 {GOOD}") for i in range(6)]  # ~1.5 s on two workers
        outcome: dict[str, httpx.Response] = {}

        def in_flight() -> None:
            with httpx.Client(base_url=service.base_url, timeout=30) as own:
                outcome["response"] = own.post("/v1/rewards", json={"items": items})

        thread = threading.Thread(target=in_flight)
        thread.start()
        deadline = time.monotonic() + 10
        while "reward_service_inflight_items 0.0" in client.get("/metrics").text:
            assert time.monotonic() < deadline, "the slow request never reached the workers"
            time.sleep(0.02)

        service.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while (ready := client.get("/readyz")).status_code == 200:
            assert time.monotonic() < deadline, "/readyz did not turn 503"
            time.sleep(0.02)
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "draining"
        refused = client.post("/v1/rewards", json={"items": [item("new")]})
        assert refused.status_code == 503 and refused.headers["retry-after"]
        assert thread.is_alive()  # the slow request was still running when we looked

        thread.join(timeout=30)
        response = outcome["response"]
        assert response.status_code == 200
        assert [r["status"] for r in response.json()["results"]] == ["ok"] * 6
        assert service.process.wait(timeout=30) == 0

        deadline = time.monotonic() + 10
        while processes_with(marker):
            assert time.monotonic() < deadline, f"left behind: {processes_with(marker)}"
            time.sleep(0.1)
        lines = [line for line in service.log_text().splitlines() if line.strip()]
        entries = [json.loads(line) for line in lines]  # every log line is one JSON object
        assert any(e["msg"] == "draining" for e in entries)
        assert not [e for e in entries if e["level"] == "error"]
    assert not os.environ.get(marker.split("=")[0])
