"""The supervised warm-up of the CPU recipe: a few hundred steps of next-token training on synthetic
prompts and generated completions, because a randomly initialised model never writes
`<think>...</think><answer>...</answer>` by chance and GRPO cannot learn from all-zero groups.

The targets are written from each record's reference (its graph, its answer), so any dataset whose
references hold graphs can be warmed up, the synthetic one and the GPU smoke's videos among them.
The targets are deliberately imperfect (coordinates replaced at random, answers at chance by default):
the warm-up teaches the format and roughly where numbers go, and leaves GRPO the headroom to learn
what the reward asks for. Loss is on completion tokens only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from trainer_client.data import Record
from trainer_client.data.synthetic import target_completion
from trainer_client.rollout import EnginePrompt, concat_inputs, model_inputs

log = logging.getLogger("trainer_client.warmup")


def supervised_warmup(model: Any, tokenizer: Any, records: Sequence[Record], prompts: Sequence[EnginePrompt], *,
                      steps: int, batch: int, lr: float, position_noise: float, answer_noise: float,
                      seed: int, should_stop: Callable[[], bool] = lambda: False) -> float:
    """Train `model` in place on `records` (each with a graph in its reference, for the target) and their
    prompts (text, or text and video: the video's tensors go to the model as in training); returns the
    last batch's loss."""
    missing = [r.id for r in records if "graph" not in r.reference]
    if missing:
        raise ValueError(f"the warm-up writes its targets from reference graphs; {missing[:3]} have none")
    encoded = [model_inputs(p) for p in prompts]
    rng = np.random.default_rng([seed, 7])
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    loss_value = float("nan")
    eos = tokenizer.eos_token
    for step in range(steps):
        if should_stop():  # nothing to save yet: a run stopped in its warm-up starts over
            raise KeyboardInterrupt
        picks = rng.integers(len(records), size=batch)
        prompt_ids = [tokenizer(encoded[i][0], add_special_tokens=False)["input_ids"] for i in picks]
        targets = [tokenizer(target_completion(records[i], rng, position_noise=position_noise,
                                               answer_noise=answer_noise) + " " + eos)["input_ids"] for i in picks]
        width = max(len(p) + len(t) for p, t in zip(prompt_ids, targets, strict=True))
        ids = torch.full((batch, width), tokenizer.pad_token_id)
        labels = torch.full((batch, width), -100)
        mask = torch.zeros((batch, width), dtype=torch.long)
        for row, (p, t) in enumerate(zip(prompt_ids, targets, strict=True)):
            ids[row, :len(p) + len(t)] = torch.tensor(p + t)
            labels[row, len(p):len(p) + len(t)] = torch.tensor(t)
            mask[row, :len(p) + len(t)] = 1
        device = next(model.parameters()).device
        videos = {k: v.to(device) for k, v in concat_inputs([encoded[i][1] for i in picks]).items()}
        loss = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device),
                     **videos).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        loss_value = float(loss.detach())
        if (step + 1) % 100 == 0 or step + 1 == steps:
            log.info("warm-up step %d/%d: loss %.3f", step + 1, steps, loss_value)
    return loss_value
