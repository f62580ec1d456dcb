"""Request bodies held at once are bounded (issue 11, fault 4): past the budget a body is refused 429
with Retry-After before it is read, and the service's memory stays bounded under concurrent big bodies."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest
from service_fixtures import SLOW_SCORER, in_process, item, real_server, settings


def body_of(size: int, completion: str = "<answer>B</answer>") -> bytes:
    """A one-item body of about `size` bytes (padding in an extra reference key)."""
    pad = "x" * max(0, size - 200)
    return orjson.dumps({"items": [item("a", completion, {"task_type": "multiple_choice", "answer": "B",
                                                           "pad": pad})]})


def test_a_body_past_the_budget_is_429_while_others_hold_it():
    config = settings(scorer=SLOW_SCORER, max_body_bytes=100_000, max_inflight_body_bytes=150_000, cache="off")
    with in_process(config) as client:
        first: dict[str, httpx.Response] = {}
        slow = body_of(90_000, "SLEEP 0.5 <answer>B</answer>")
        thread = threading.Thread(target=lambda: first.update(r=client.post("/v1/rewards", content=slow)))
        thread.start()
        service = client.app.state.service
        deadline = time.monotonic() + 5
        while service.body_bytes_held == 0:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        refused = client.post("/v1/rewards", content=body_of(90_000))
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "overloaded" and int(refused.headers["retry-after"]) >= 1
        assert "x-request-id" in refused.headers
        assert client.post("/v1/rewards", content=body_of(20_000)).status_code == 200  # within the budget
        thread.join()
        assert first["r"].status_code == 200
        assert service.body_bytes_held == 0
        assert client.post("/v1/rewards", content=body_of(90_000)).status_code == 200


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.slow
def test_soak_of_concurrent_big_bodies_keeps_the_service_process_memory_bounded(capsys):
    # The probe that found the fault: 16 clients posting 60 MB bodies at once took the service to 2.6 GB.
    # Here 16 clients post 16 MB bodies three times each, against a budget of 32 MiB held at once.
    big = orjson.dumps({"items": [item("big", "<think>" + "x" * (16 * 2**20) + "</think><answer>B</answer>")]})
    with real_server("--cache", "off", "--max-body-bytes", str(20 * 2**20),
                     "--max-inflight-body-bytes", str(32 * 2**20)) as (_, service):
        codes: list[int] = []
        lock = threading.Lock()

        def client() -> None:
            with httpx.Client(base_url=service.base_url, timeout=60) as c:
                for _ in range(3):
                    code = c.post("/v1/rewards", content=big, headers={"content-type": "application/json"}).status_code
                    with lock:
                        codes.append(code)

        threads = [threading.Thread(target=client) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        peak = peak_rss_mb(service.process.pid)
    with capsys.disabled():
        print(f"\nsoak: 16 clients x 3 bodies of 16 MiB: {codes.count(200)} answered 200, "
              f"{codes.count(429)} 429; service process peak RSS {peak:.0f} MB")
    assert set(codes) <= {200, 429} and codes.count(200) >= 3
    assert peak < 700, peak
