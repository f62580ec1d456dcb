"""An OpenRLHF-shaped client against a real socket: the same request, headers and response handling
as OpenRLHF's `remote_rm_fn` (`openrlhf/utils/remote_rm_utils.py`), with `requests` as it uses."""

from __future__ import annotations

import json
import time

import pytest
import requests
from service_fixtures import GOOD, GRAPH_GOOD, GRAPH_REF, MC_REF, NUM_REF, SLOW_SCORER, WRONG, real_server


def request_api_wrapper(url, data, score_key="rewards", try_max_times=5):
    """OpenRLHF's loop: POST JSON, raise_for_status, the score key must be there, retry on errors."""
    headers = {"Content-Type": "application/json"}
    for _ in range(try_max_times):
        try:
            response = requests.post(url=url, json=data, headers=headers, timeout=180)
            response.raise_for_status()
            response = response.json()
            assert score_key in response, f"{score_key} not in {response}"
            return response.get(score_key), response
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError("request failed")


def remote_rm_fn(api_url, queries, prompts, labels, score_key="rewards"):
    scores, _ = request_api_wrapper(api_url, {"query": queries, "prompts": prompts, "labels": labels}, score_key)
    return scores


@pytest.fixture(scope="module")
def base_url():
    with real_server("--workers", "2", "--cache", "off", env={"REWARD_SERVICE_SCORER": SLOW_SCORER,
                                                            "REWARD_SERVICE_ITEM_DEADLINE_S": "0.5"}) as (_, service):
        yield service.base_url


def test_openrlhf_rollout_batch(base_url):
    template = "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"
    prompts, queries, labels = [], [], []
    for i, (response, ref) in enumerate([(GOOD, MC_REF), (WRONG, MC_REF), (GRAPH_GOOD, GRAPH_REF),
                                         ("<think>x</think><answer>3.5 m</answer>", NUM_REF)] * 4):
        prompt = template.format(q=f"question {i}")
        prompts.append(prompt)
        queries.append(prompt + response)
        labels.append(json.dumps(ref))
    rewards = remote_rm_fn(f"{base_url}/get_reward", queries, prompts, labels)
    assert rewards == [2.0, 1.0, 3.0, 1.8] * 4
    _, body = request_api_wrapper(f"{base_url}/get_reward", {"query": queries, "prompts": prompts, "labels": labels})
    assert body["scores"] == [1.0, 1.0, 1.0, 1.0] * 4
    assert body["extra_logs"]["graph_node"] == [0.0, 0.0, 1.0, 0.0] * 4
    assert all(isinstance(v, float) for values in body["extra_logs"].values() for v in values)


def test_scores_key(base_url):
    scores = remote_rm_fn(f"{base_url}/get_reward", ["P" + WRONG], ["P"], [json.dumps(MC_REF)], score_key="scores")
    assert scores == [1.0]


def test_an_item_that_times_out_is_zero_flagged_masked_not_a_failed_run(base_url):
    """OpenRLHF stops its run after five failed tries: an item's own timeout is a 200, flagged."""
    _, body = request_api_wrapper(f"{base_url}/get_reward", {"query": ["pSTUCK"], "prompts": ["p"],
                                                              "labels": [json.dumps(MC_REF)]})
    assert body["rewards"] == [0.0] and body["scores"] == [0.0]
    assert body["extra_logs"]["masked"] == [1.0]
