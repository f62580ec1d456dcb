"""TRL's own GRPOTrainer (1.16, CPU) trains two steps against a live service through our adapter.

A tiny Qwen2 model and a word-level tokenizer are built in code and given a few seconds of supervised
warm-up, so that its sampled completions are well formed with varying answers: the rewards then vary
and a broken adapter (zeros, wrong order, wrong item) cannot pass by accident.
"""

from __future__ import annotations

import json
import pickle

import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

from reward_service.scoring import score  # noqa: E402
from trainer_client.integrations.trl import component_reward_functions, reward_function  # noqa: E402
from trainer_client.tiny import tiny_qwen2, word_tokenizer  # noqa: E402

pytestmark = [pytest.mark.trainer, pytest.mark.slow]

WORDS = ["question", ":", "which", "?", "<think>", "</think>", "<answer>", "</answer>", "A", "B", "C", "x"]
REFERENCE = {"task_type": "multiple_choice", "answer": "B", "options": ["red", "green", "blue"],
             "graph": {"nodes": {"chair": [0.0, 1.0], "table": [2.0, 1.0]}}, "graph_scale": 5.0}
PROMPT = "question : which ?"


def warmed_up_model():
    """A tiny model that writes `<think> x </think> <answer> L </answer>` with L one of A, B, C."""
    tokenizer = word_tokenizer(WORDS)
    model = tiny_qwen2(tokenizer, hidden=32, layers=1, heads=2, kv_heads=1, intermediate=64, seed=1)
    texts = [f"{PROMPT} <think> x </think> <answer> {letter} </answer> <eos>" for letter in "ABC"]
    batch = tokenizer(texts, return_tensors="pt")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(60):
        loss = model(**batch, labels=batch["input_ids"]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, tokenizer


def grpo_config(tmp_path, **extra):
    return trl.GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, max_steps=2, learning_rate=1e-4,
                          per_device_train_batch_size=8, num_generations=4, max_completion_length=10,
                          logging_steps=1, report_to="none", save_strategy="no", seed=0, temperature=1.0,
                          **extra)


def dataset():
    return datasets.Dataset.from_list([{"prompt": PROMPT, "reference": json.dumps(REFERENCE)}] * 8)


def test_grpo_trainer_logs_the_services_rewards(service, tmp_path):
    func = reward_function(service.base_url)
    assert func.__name__ == "video_str_reward"
    assert pickle.loads(pickle.dumps(func)).__name__ == "video_str_reward"  # picklable, client made on use
    model, tokenizer = warmed_up_model()
    trainer = trl.GRPOTrainer(model=model, reward_funcs=func, args=grpo_config(tmp_path), train_dataset=dataset(),
                              processing_class=tokenizer)
    trainer.train()

    steps = [h for h in trainer.state.log_history if "rewards/video_str_reward/mean" in h]
    assert len(steps) == 2
    # TRL's record of the last batch: each logged reward is the service's score of that completion
    completions = list(trainer._logs["completion"])
    logged = list(trainer._logs["rewards"]["video_str_reward"])
    assert len(completions) == len(logged) == 8
    expected = [score(c, REFERENCE).reward for c in completions]
    assert logged == pytest.approx(expected)
    assert len(set(logged)) > 1, f"rewards do not vary ({logged}): the warm-up did not take"
    assert steps[-1]["rewards/video_str_reward/mean"] == pytest.approx(sum(expected) / len(expected), abs=1e-5)
    assert steps[-1]["reward_service/masked_fraction"] == 0.0  # logged through TRL's log_metric


def test_component_functions_show_each_curve_and_share_one_request(service, tmp_path):
    funcs, weights = component_reward_functions(service.base_url, config={"weights": {"graph_node": 1.0}})
    assert [f.__name__ for f in funcs] == ["format", "answer", "graph_node", "graph_edge", "length"]
    assert weights == [1.0, 1.0, 1.0, 0.5, 0.0]  # the service's defaults with the override merged
    before = service.metric("reward_service_requests_total", route="/v1/rewards", code="200")
    model, tokenizer = warmed_up_model()
    trainer = trl.GRPOTrainer(model=model, reward_funcs=funcs, args=grpo_config(tmp_path, reward_weights=weights),
                              train_dataset=dataset(), processing_class=tokenizer)
    trainer.train()

    assert service.metric("reward_service_requests_total", route="/v1/rewards", code="200") == before + 2
    last = [h for h in trainer.state.log_history if "reward" in h][-1]
    means = {name: last[f"rewards/{name}/mean"] for name in ("format", "answer", "graph_node", "graph_edge",
                                                             "length")}
    assert means["format"] > 0 and means["graph_node"] == 0.0  # well formed, but no graph written
    assert last["reward"] == pytest.approx(sum(w * means[n] for w, n in zip(weights, means, strict=True)), abs=1e-5)
    completions = list(trainer._logs["completion"])
    for name in ("format", "answer"):
        expected = [score(c, REFERENCE).components[name] for c in completions]
        assert list(trainer._logs["rewards"][name]) == pytest.approx(expected)


def test_async_variant_scores_the_same(service, tmp_path):
    import asyncio

    func = reward_function(service.base_url, asynchronous=True)
    completions = ["<think> x </think> <answer> B </answer>", [{"role": "assistant", "content": "<answer>B"}]]
    rewards = asyncio.run(func(prompts=[PROMPT] * 2, completions=completions, completion_ids=[[1] * 6, [1] * 2],
                               reference=[REFERENCE, json.dumps(REFERENCE)]))
    assert rewards == [score(completions[0], REFERENCE).reward, 0.0]


def test_a_masked_item_is_none_for_trl_never_zero(service):
    funcs, _ = component_reward_functions(service.base_url)
    total = reward_function(service.base_url)
    columns = {"reference": [REFERENCE, REFERENCE]}
    completions = ["<think> x </think> <answer> B </answer>", "STUCK"]  # the test scorer never finishes STUCK
    assert total(prompts=[PROMPT] * 2, completions=completions, completion_ids=None, **columns)[1] is None
    assert [f(prompts=[PROMPT] * 2, completions=completions, **columns)[1] for f in funcs] == [None] * 5


def test_a_missing_reference_column_is_a_clear_error(service):
    func = reward_function(service.base_url, reference_column="solution")
    with pytest.raises(ValueError, match="no 'solution' column"):
        func(prompts=[PROMPT], completions=["x"], completion_ids=None, reference=[REFERENCE])
