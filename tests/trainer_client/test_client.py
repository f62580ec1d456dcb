"""The reward client against a real service on 127.0.0.1: every task type, chunking, 429 and 503,
a service killed and started again mid-run, a wrong key, an invalid reference, a timed-out item."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
import time

import pytest
from service_fixtures import GOOD, MC_REF, golden_cases

from reward_service.scoring.advantages import group_advantages
from trainer_client.client import (
    AsyncRewardClient,
    AuthenticationError,
    InvalidRequest,
    RewardClient,
    ServiceUnavailable,
)

TASK_TYPES = {"multiple_choice", "numerical", "temporal_iou", "box_iou", "track_iou"}


def test_every_golden_case_through_the_client_with_every_task_type(service):
    cases = golden_cases()
    assert {c["reference"]["task_type"] for c in cases} == TASK_TYPES
    by_config: dict[str, list[dict]] = {}
    for case in cases:
        by_config.setdefault(json.dumps(case["config"], sort_keys=True), []).append(case)
    with RewardClient(service.base_url) as client:
        for config, group in by_config.items():
            items = [{"id": c["id"], "completion": c["completion"], "reference": c["reference"],
                      "num_tokens": c.get("num_tokens")} for c in group]
            results = client.score(items, config=json.loads(config) or None)
            assert [r.id for r in results] == [c["id"] for c in group]
            for case, result in zip(group, results, strict=True):
                assert result.status == "ok" and result.mask is False
                assert result.reward == pytest.approx(case["expected"]["reward"], abs=1e-9), case["id"]
                for name, value in case["expected"]["components"].items():
                    if value is None:
                        assert result.components[name] is None, (case["id"], name)
                    else:
                        assert result.components[name] == pytest.approx(value, abs=1e-9), (case["id"], name)


def test_score_groups_gives_the_grpo_shape_and_the_services_advantages(service):
    completions = [[GOOD, GOOD.replace("B", "A"), GOOD], [GOOD.replace("B", "C"), GOOD]]
    with RewardClient(service.base_url) as client:
        groups = client.score_groups(completions, [MC_REF, MC_REF], num_tokens=[[400, 10, 400], [5, 6]])
    assert [[r.id for r in g] for g in groups] == [["p0-0", "p0-1", "p0-2"], ["p1-0", "p1-1"]]
    assert [[r.reward for r in g] for g in groups] == [[2.0, 1.0, 2.0], [1.0, 2.0]]
    expected = group_advantages([2.0, 1.0, 2.0, 1.0, 2.0], ["p0"] * 3 + ["p1"] * 2, "grpo")
    assert [r.advantage for g in groups for r in g] == pytest.approx(expected)
    assert all(r.group_id == f"p{p}" for p, g in enumerate(groups) for r in g)


def test_a_timed_out_item_is_masked_with_a_null_reward_never_zero(service):
    items = [{"id": "ok", "group_id": "g", "completion": GOOD, "reference": MC_REF},
             {"id": "stuck", "group_id": "g", "completion": "STUCK", "reference": MC_REF},
             {"id": "ok2", "group_id": "g", "completion": GOOD.replace("B", "A"), "reference": MC_REF}]
    with RewardClient(service.base_url) as client:
        ok, stuck, ok2 = client.score(items, advantages="grpo")
    assert stuck.status == "timeout" and stuck.mask is True
    assert stuck.reward is None and stuck.advantage is None and "deadline" in (stuck.error or "")
    assert ok.reward == 2.0 and ok2.reward == 1.0
    assert ok.advantage == pytest.approx(group_advantages([2.0, 1.0], ["g", "g"], "grpo")[0])


def test_an_invalid_reference_names_the_item_and_is_not_retried(service):
    items = [{"id": f"r{i}", "completion": GOOD, "reference": MC_REF} for i in range(5)]
    items[3] = {"id": "bad-one", "completion": GOOD, "reference": {"task_type": "multiple_choice", "answer": "Z"}}
    before = service.metric("reward_service_requests_total", route="/v1/rewards", code="422")
    with RewardClient(service.base_url) as client, pytest.raises(InvalidRequest) as caught:
        client.score(items)
    assert caught.value.status_code == 422
    assert caught.value.items == [(3, "bad-one")]
    assert "bad-one" in caught.value.message
    assert service.metric("reward_service_requests_total", route="/v1/rewards", code="422") == before + 1


def test_chunks_follow_the_limit_learnt_from_the_server_and_keep_group_advantages(service_process):
    small = service_process("--max-items", "16").start()
    completions = [GOOD, GOOD.replace("B", "A"), GOOD.replace("B", "C")]
    # 10 groups of 7: every chunk boundary (16 items) cuts through a group
    items = [{"id": f"g{g}-{i}", "group_id": f"g{g}", "completion": completions[(g + i) % 3], "reference": MC_REF}
             for g in range(10) for i in range(7)]
    with RewardClient(small.base_url) as client:
        assert client.limits() == (16, 64 * 2**20)
        results = client.score(items, advantages="rloo")
    assert [r.id for r in results] == [i["id"] for i in items]
    rewards = [r.reward for r in results]
    assert rewards == [2.0 if completions[(g + i) % 3] == GOOD else 1.0 for g in range(10) for i in range(7)]
    assert [r.advantage for r in results] == pytest.approx(
        group_advantages(rewards, [i["group_id"] for i in items], "rloo"))
    assert small.metric("reward_service_requests_total", route="/v1/rewards", code="200") == 5  # ceil(70/16)
    assert small.metric("reward_service_requests_total", route="/v1/rewards", code="413") == 0


def test_async_client_chunks_concurrently_with_the_same_results(service_process):
    small = service_process("--max-items", "8").start()
    items = [{"id": f"i{i}", "group_id": f"g{i // 4}", "completion": GOOD if i % 3 else GOOD.replace("B", "D"),
              "reference": MC_REF} for i in range(40)]

    async def run():
        async with AsyncRewardClient(small.base_url, max_concurrency=3) as client:
            return await client.score(items, advantages="grpo")

    results = asyncio.run(run())
    with RewardClient(small.base_url) as client:
        again = client.score(items, advantages="grpo")
    assert [r.reward for r in results] == [r.reward for r in again]
    assert [r.advantage for r in results] == pytest.approx([r.advantage for r in again])
    assert all(r.cached for r in again)  # the second run was answered from the service's cache


def test_a_wrong_key_is_a_clear_error_and_is_not_retried(service_process):
    secured = service_process(env={"REWARD_SERVICE_API_KEYS": "right-key"}).start()
    with RewardClient(secured.base_url, api_key="wrong-key", max_items=100, max_body_bytes=2**20) as client, \
            pytest.raises(AuthenticationError) as caught:
        client.score([{"completion": GOOD, "reference": MC_REF}])
    assert caught.value.status_code == 401
    assert secured.metric("reward_service_requests_total", route="/v1/rewards", code="401") == 1
    with RewardClient(secured.base_url, api_key="right-key") as client:  # and the right key works
        assert client.score([{"completion": GOOD, "reference": MC_REF}])[0].reward == 2.0


def test_429_under_concurrent_load_is_retried_until_every_batch_is_scored(service_process):
    busy = service_process("--max-queued-items", "12", "--max-items", "12", "--chunk-items", "4",
                           env={"REWARD_SERVICE_SCORER": "slow_scorer:score"}).start()
    errors: list[BaseException] = []
    rewards: list[list[float | None]] = []

    def trainer(n: int) -> None:
        items = [{"id": f"t{n}-{i}", "completion": f"SLEEP 0.02 {GOOD}", "reference": {**MC_REF, "t": n}}
                 for i in range(12)]
        try:
            with RewardClient(busy.base_url, retry_attempts=30, retry_max_s=60) as client:
                rewards.append(client.score(items).rewards)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=trainer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert rewards == [[2.0] * 12] * 6
    assert busy.metric("reward_service_requests_total", route="/v1/rewards", code="429") >= 1


def test_503_while_starting_and_draining_is_ridden_out(service_process, caplog):
    caplog.set_level(logging.WARNING, logger="trainer_client.client")
    svc = service_process("--drain-grace", "1.5")
    svc.start(wait=False)  # the first tries meet a service that is not listening or not ready yet
    with RewardClient(svc.base_url, retry_max_s=90) as client:
        assert client.score([{"completion": GOOD, "reference": MC_REF}])[0].reward == 2.0
        assert "retry 1" in caplog.text  # it did meet the service down
        caplog.clear()
        svc.process.send_signal(signal.SIGTERM)  # draining: 503 for 1.5 s, then the process exits
        time.sleep(0.3)
        restart = threading.Timer(2.5, lambda: (svc.process.wait(), svc.start(wait=False)))
        restart.start()
        try:
            result = client.score([{"completion": GOOD.replace("B", "A"), "reference": MC_REF}])[0]
        finally:
            restart.join()
    assert result.reward == 1.0
    assert "answered 503" in caplog.text and "draining" in caplog.text


def test_a_service_killed_mid_run_and_restarted_on_the_same_port_is_ridden_out(service_process, caplog):
    caplog.set_level(logging.WARNING, logger="trainer_client.client")
    svc = service_process(env={"REWARD_SERVICE_SCORER": "slow_scorer:score"}).start()
    items = [{"id": f"k{i}", "group_id": f"g{i // 8}", "completion": f"SLEEP 0.05 {GOOD}",
              "reference": {**MC_REF, "run": "kill"}} for i in range(64)]
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            with RewardClient(svc.base_url, max_items=16, retry_max_s=90) as client:
                outcome["results"] = client.score(items, advantages="grpo")
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.8)  # chunks are in flight (64 items x 50 ms on one worker take over 3 s)
    svc.kill()
    time.sleep(1.0)
    svc.start(wait=False)
    worker.join(120)
    assert "error" not in outcome, outcome.get("error")
    results = outcome["results"]
    assert [r.reward for r in results] == [2.0] * 64  # type: ignore[attr-defined]
    assert all(r.advantage == 0.0 for r in results)  # type: ignore[attr-defined]
    assert "not reachable" in caplog.text or "answered 503" in caplog.text  # the kill did meet the run


def test_the_retry_budget_is_bounded_and_ends_in_service_unavailable():
    start = time.monotonic()
    with RewardClient("http://127.0.0.1:9", max_items=10, max_body_bytes=2**20, retry_attempts=3,
                      retry_max_s=30) as client, pytest.raises(ServiceUnavailable) as caught:
        client.score([{"completion": GOOD, "reference": MC_REF}])
    assert time.monotonic() - start < 15
    assert "gave up after 3 attempts" in caught.value.message
