"""OpenRLHF 0.11's own reward fetching against a live service: no adapter of ours is involved.

OpenRLHF's `SingleTurnAgentExecutor` (what `--reward.remote_url` sets up) generates a rollout, decodes
prompt plus response, POSTs one query per request to `/get_reward`, retries 5 times 1 s apart, and
then gives up (its run stops for want of a reward). OpenRLHF installs here without its GPU stack
(`pip install --no-deps`), so its executor runs for real with a stand-in for the vLLM engine.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from types import SimpleNamespace

import pytest

pytest.importorskip("aiohttp")
agent = pytest.importorskip("openrlhf.utils.agent")

from reward_service.scoring import score  # noqa: E402
from trainer_client.tiny import word_tokenizer  # noqa: E402

pytestmark = [pytest.mark.trainer]

WORDS = ["question", "?", "<think>", "</think>", "<answer>", "</answer>", "A", "B", "x", "STUCK"]
REFERENCE = {"task_type": "multiple_choice", "answer": "B", "options": ["left", "right"]}
PROMPT = "question ?"


class StandInEngine:
    """The part of vLLM's async engine the executor calls: `generate(ids, params, multi_modal_data=)`."""

    def __init__(self, tokenizer, response: str) -> None:
        self.ids = tokenizer(response, add_special_tokens=False)["input_ids"]

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        output = SimpleNamespace(token_ids=list(self.ids), finish_reason="stop", logprobs=None)
        return SimpleNamespace(outputs=[output])


def rollout(url: str, response: str) -> dict:
    tokenizer = word_tokenizer(WORDS)
    executor = agent.SingleTurnAgentExecutor(f"{url}/get_reward")
    params = SimpleNamespace(max_tokens=16, logprobs=None)
    return asyncio.run(executor.execute(PROMPT, json.dumps(REFERENCE), params, 64, tokenizer,
                                        StandInEngine(tokenizer, response)))


def test_openrlhf_gets_the_services_reward_with_its_component_logs(service):
    response = "<think> x </think> <answer> B </answer>"
    out = rollout(service.base_url, response)
    expected = score(response, REFERENCE)
    assert out["reward"] == [expected.reward] and out["scores"] == [1.0]
    assert out["extra_logs"]["format"] == [1.0] and out["extra_logs"]["masked"] == [0.0]


def test_an_item_that_times_out_is_zero_flagged_masked_and_the_run_goes_on(service):
    out = rollout(service.base_url, "STUCK")  # the test scorer never finishes it; the item deadline is 0.5 s
    assert out["reward"] == [0.0] and out["scores"] == [0.0]
    assert out["extra_logs"]["masked"] == [1.0]


def test_a_service_restarted_within_openrlhfs_retry_window_loses_no_reward(service_process):
    svc = service_process().start()
    svc.kill()
    # down for 0.5 s plus its start (about 2 s here): inside OpenRLHF's five tries a second apart
    restart = threading.Timer(0.5, svc.start, kwargs={"wait": False})
    restart.start()
    start = time.monotonic()
    try:
        out = rollout(svc.base_url, "<think> x </think> <answer> A </answer>")
    finally:
        restart.join()
    assert out["reward"] == [1.0]  # format 1, answer 0
    assert time.monotonic() - start >= 0.5  # it did retry


def test_a_service_that_stays_down_leaves_openrlhf_without_a_reward_not_a_zero(service_process):
    svc = service_process().start()
    svc.kill()
    out = rollout(svc.base_url, "<think> x </think> <answer> B </answer>")
    assert out["reward"] is None  # OpenRLHF logs the failure; no made-up reward enters training
