"""verl 0.9's own reward code against a live service through our adapter.

verl imports on this CPU machine without its GPU stack, so the adapter is driven by verl itself: its
`RewardLoopWorker` (the class its reward loop runs as a Ray actor) loads our function from the
`pkg://` path with `reward_kwargs`, builds the `rate_limited` or `naive` manager, decodes the responses
with the tokenizer and calls us; its legacy `BatchRewardManager` calls the batch form.
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
verl = pytest.importorskip("verl")
omegaconf = pytest.importorskip("omegaconf")

from verl import DataProto  # noqa: E402
from verl.experimental.reward_loop.reward_loop import RewardLoopWorker  # noqa: E402
from verl.workers.reward_manager.batch import BatchRewardManager  # noqa: E402

from reward_service.scoring import score  # noqa: E402
from trainer_client.integrations.verl import compute_score, compute_score_batch  # noqa: E402
from trainer_client.tiny import word_tokenizer  # noqa: E402

pytestmark = [pytest.mark.trainer]

WORDS = ["<think>", "</think>", "<answer>", "</answer>", "<graph>", "</graph>", "A", "B", "C", "x", "{", "}",
         '"chair"', '"table"', ":", "[", "]", ",", "0", "1", "2", "question", "?"]
REFERENCE = {"task_type": "multiple_choice", "answer": "B",
             "graph": {"nodes": {"chair": [0.0, 1.0], "table": [2.0, 1.0]}}, "graph_scale": 5.0}
RESPONSES = [
    "<think> <graph> { \"chair\" : [ 0 , 1 ] , \"table\" : [ 2 , 1 ] } </graph> </think> <answer> B </answer>",
    "<think> x </think> <answer> A </answer>",
    "<answer> B </answer>",
    "<think> <graph> { \"chair\" : [ 1 , 1 ] } </graph> </think> <answer> B </answer>",
]
KEYS = {"score", "masked"} | {f"{c}{s}" for c in ("format", "answer", "graph_node", "graph_edge", "length")
                              for s in ("", "_null")}


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tokenizer")
    word_tokenizer(WORDS).save_pretrained(path)
    return path


def rollouts(tokenizer, responses, ground_truth):
    """A DataProto as verl's rollout makes it: left-padded prompts, right-padded responses."""
    prompt = tokenizer(["question ?"] * len(responses), return_tensors="pt")["input_ids"]
    encoded = tokenizer(responses, return_tensors="pt", padding="longest", padding_side="right")
    attention = torch.cat([torch.ones_like(prompt), encoded["attention_mask"]], dim=1)
    return DataProto.from_dict(
        tensors={"prompts": prompt, "responses": encoded["input_ids"], "attention_mask": attention,
                 "input_ids": torch.cat([prompt, encoded["input_ids"]], dim=1)},
        non_tensors={"data_source": np.array(["video_str"] * len(responses), dtype=object),
                     "reward_model": np.array([{"style": "rule", "ground_truth": ground_truth}] * len(responses),
                                              dtype=object),
                     "extra_info": np.array([{"index": i} for i in range(len(responses))], dtype=object)})


def loop_config(tokenizer_dir, base_url, manager, name):
    return omegaconf.OmegaConf.create({
        "actor_rollout_ref": {"model": {"path": str(tokenizer_dir), "tokenizer_path": str(tokenizer_dir)}},
        "reward": {
            "max_concurrent": 64,
            "reward_model": {"enable": False},
            "reward_manager": {"source": "register", "name": manager},
            "custom_reward_function": {"path": "pkg://trainer_client.integrations.verl", "name": name,
                                       "reward_kwargs": {"url": base_url}},
        },
    })


@pytest.mark.parametrize(("manager", "name"), [("rate_limited", "compute_score_async"), ("naive", "compute_score")])
def test_verls_reward_loop_scores_through_the_service(service, tokenizer_dir, manager, name):
    worker = RewardLoopWorker(loop_config(tokenizer_dir, service.base_url, manager, name))
    data = rollouts(worker.input_tokenizer, RESPONSES, json.dumps(REFERENCE))  # ground truth as JSON text
    before = service.metric("reward_service_requests_total", route="/v1/rewards", code="200")
    outputs = worker.loop.run_until_complete(worker.compute_score_batch(data))

    expected = [score(r, REFERENCE) for r in RESPONSES]
    assert [o["reward_score"] for o in outputs] == pytest.approx([e.reward for e in expected])
    assert all(set(o["reward_extra_info"]) == KEYS for o in outputs)  # the same keys for every sample
    assert [o["reward_extra_info"]["graph_node"] for o in outputs] == pytest.approx(
        [e.components["graph_node"] for e in expected])
    assert [o["reward_extra_info"]["length_null"] for o in outputs] == [1.0] * 4  # no num_tokens: null, flagged
    requests = service.metric("reward_service_requests_total", route="/v1/rewards", code="200") - before
    if name == "compute_score_async":
        assert requests == 1  # verl's concurrent per-rollout calls were gathered into one request
    else:
        assert requests == 4


def test_an_item_the_service_cannot_score_is_zero_flagged_and_logged(service, caplog):
    result = compute_score("video_str", "STUCK", REFERENCE, url=service.base_url)
    assert result["score"] == 0.0 and result["masked"] == 1.0
    assert all(result[f"{c}_null"] == 1.0 for c in ("format", "answer", "graph_node", "graph_edge", "length"))
    assert "could not be scored (timeout)" in caplog.text


def test_verls_batch_manager_calls_the_batch_form(service, tokenizer_dir):
    tokenizer = word_tokenizer(WORDS)
    manager = BatchRewardManager(tokenizer, num_examine=0, compute_score=compute_score_batch, url=service.base_url)
    data = rollouts(tokenizer, RESPONSES, REFERENCE)  # ground truth as a dict
    out = manager(data, return_dict=True)
    expected = [score(r, REFERENCE).reward for r in RESPONSES]
    lengths = data.batch["attention_mask"][:, data.batch["prompts"].shape[1]:].sum(-1)
    rewards = [float(out["reward_tensor"][i, lengths[i] - 1]) for i in range(len(RESPONSES))]
    assert rewards == pytest.approx(expected)
    assert out["reward_extra_info"]["masked"] == [0.0] * 4


def test_url_and_key_come_from_the_environment_when_reward_kwargs_lack_them(service, monkeypatch):
    monkeypatch.setenv("REWARD_SERVICE_URL", service.base_url)
    assert compute_score("video_str", RESPONSES[1], REFERENCE)["score"] == score(RESPONSES[1], REFERENCE).reward

    async def both():
        from trainer_client.integrations.verl import compute_score_async

        return await asyncio.gather(*(compute_score_async("video_str", r, REFERENCE) for r in RESPONSES))

    assert [o["score"] for o in asyncio.run(both())] == pytest.approx([score(r, REFERENCE).reward for r in RESPONSES])
