"""Redis as the cache, with a real redis-server started on a free port: shared by replicas, and when it
dies or is slow mid-run, no request fails; the fault is counted and logged once per interval."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from service_fixtures import GOOD, NUM_REF, WRONG, in_process, item, settings

from reward_service.service.cache import RedisCache

pytestmark = pytest.mark.redis


def metric(client, name, **labels):
    total = 0.0
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_redis_cache_round_trip_with_ttl(redis):
    async def body():
        cache = RedisCache(redis.url, ttl_s=123)
        await cache.set_many([(b"k1", b"v1"), (b"k2", b"v2")])
        assert await cache.get_many([b"k1", b"nope", b"k2"]) == [b"v1", None, b"v2"]
        await cache.close()

    asyncio.run(body())
    ttl = int(redis.command("TTL", "reward_service:" + b"k1".hex()).strip(b":\r\n"))
    assert 0 < ttl <= 123


def test_redis_down_means_unavailable_counted_and_skipped_for_a_while(redis):
    faults: list[tuple[str, str]] = []

    async def body():
        cache = RedisCache(redis.url, retry_s=0.5, on_fault=lambda op, kind: faults.append((op, kind)))
        await cache.set_many([(b"k", b"v")])
        redis.kill()
        start = time.monotonic()
        assert await cache.get_many([b"k"]) is None
        assert time.monotonic() - start < 0.5
        assert faults == [("get", "error")]
        assert await cache.get_many([b"k"]) is None  # skipped: no second attempt, no second fault
        await cache.set_many([(b"k", b"v")])
        assert faults == [("get", "error")]
        await cache.close()

    asyncio.run(body())


def test_slow_redis_is_a_timeout_after_50_ms(redis):
    faults: list[tuple[str, str]] = []

    async def body():
        cache = RedisCache(redis.url, timeout_s=0.05, on_fault=lambda op, kind: faults.append((op, kind)))
        await cache.set_many([(b"k", b"v")])
        os.kill(redis.process.pid, signal.SIGSTOP)  # a frozen server: connected, never answering
        try:
            start = time.monotonic()
            assert await cache.get_many([b"k"]) is None
            assert time.monotonic() - start < 0.2
        finally:
            os.kill(redis.process.pid, signal.SIGCONT)
        assert faults == [("get", "timeout")]
        await cache.close()

    asyncio.run(body())


def test_replicas_share_results_through_redis(redis):
    body = {"items": [item("shared", GOOD + " shared"), item("other", WRONG + " shared", NUM_REF)]}
    with in_process(settings(redis_url=redis.url, workers=1)) as a:
        first = a.post("/v1/rewards", json=body).json()["results"]
    with in_process(settings(redis_url=redis.url, workers=1)) as b:
        second = b.post("/v1/rewards", json=body).json()["results"]
        assert metric(b, "reward_service_cache_requests_total", result="hit") == 2
    assert [r["cached"] for r in first] == [False, False]
    assert [r["cached"] for r in second] == [True, True]
    assert [r["reward"] for r in first] == [r["reward"] for r in second]


def test_killing_redis_mid_run_fails_no_request(redis, caplog):
    with caplog.at_level(logging.WARNING), in_process(settings(redis_url=redis.url, redis_retry_s=0.2)) as client:
        responses = []
        lock = threading.Lock()

        def sender(name: str) -> None:
            for round_ in range(25):
                items = [item(f"{name}{j}", GOOD.replace("</think>", f"{round_ % 5} {j}</think>")) for j in range(8)]
                response = client.post("/v1/rewards", json={"items": items})
                with lock:
                    responses.append(response)
                time.sleep(0.01)

        threads = [threading.Thread(target=sender, args=(name,)) for name in "ab"]
        for t in threads:
            t.start()
        while len(responses) < 15:  # requests on both threads have been served through Redis
            time.sleep(0.005)
        redis.kill()  # while requests are in flight
        for t in threads:
            t.join()
        assert [r.status_code for r in responses] == [200] * 50
        results = [r for response in responses for r in response.json()["results"]]
        assert all(r["status"] == "ok" and r["reward"] == 2.0 for r in results)
        assert any(r["cached"] for r in results)  # Redis served repeats before it died
        assert metric(client, "reward_service_cache_faults_total") >= 1
        assert metric(client, "reward_service_cache_requests_total", result="error") >= 8
        assert client.get("/readyz").status_code == 200
    fault_lines = [r for r in caplog.records if r.name == "reward_service.service.cache"]
    assert 1 <= len(fault_lines) <= 2  # logged once per interval, not once per request
    assert all(redis.url not in r.getMessage() for r in fault_lines)


def test_a_busy_event_loop_is_not_counted_as_redis_being_slow(redis):
    # CPU contention in the service process (bodies being parsed, workers on the same cores) delays the
    # reading of a large MGET answer, which arrives in several reads, past the 50 ms: that is not a
    # Redis fault, and the cache must not be skipped for it.
    faults: list[tuple[str, str]] = []

    async def body():
        cache = RedisCache(redis.url, timeout_s=0.05, retry_s=0.0,
                           on_fault=lambda op, kind: faults.append((op, kind)))
        keys = [b"k%d" % i for i in range(256)]
        await cache.set_many([(k, b"v" * 2000) for k in keys])  # a 512 KB answer
        busy = True

        async def hog() -> None:  # the loop busy 20 ms at a time, as when parsing big bodies back to back
            while busy:
                time.sleep(0.02)
                await asyncio.sleep(0)

        hogging = asyncio.ensure_future(hog())
        try:
            answers = [await cache.get_many(keys) for _ in range(10)]
        finally:
            busy = False
            await hogging
        assert faults == [] and all(a == [b"v" * 2000] * 256 for a in answers)
        await cache.close()

    asyncio.run(body())


def test_every_redis_outage_logs_its_start_and_its_end(redis, caplog):
    async def body():
        cache = RedisCache(redis.url, timeout_s=0.05, retry_s=0.1, fault_log_interval_s=60)
        await cache.set_many([(b"k", b"v")])
        os.kill(redis.process.pid, signal.SIGSTOP)  # one slow call: an outage of its own
        try:
            assert await cache.get_many([b"k"]) is None
        finally:
            os.kill(redis.process.pid, signal.SIGCONT)
        await asyncio.sleep(0.15)
        assert await cache.get_many([b"k"]) == [b"v"]
        redis.kill()  # then a real outage, well within the reminder interval
        await asyncio.sleep(0.15)
        assert await cache.get_many([b"k"]) is None
        await cache.close()

    with caplog.at_level(logging.WARNING, logger="reward_service.service.cache"):
        asyncio.run(body())
    lines = [r.getMessage() for r in caplog.records if r.name == "reward_service.service.cache"]
    assert [line.split(":")[0].split(" after")[0] for line in lines] == [
        "redis cache outage started", "redis cache outage ended", "redis cache outage started"]
