"""Rollouts as the training model's input, and the log-probabilities of their sampled tokens.

Prompts are left-padded and completions right-padded, so every completion starts at the same column
and the model computes logits for the completion positions only (`logits_to_keep`): a video prompt's
thousands of placeholder tokens never reach the vocabulary projection, whose float32 log-softmax over
(rows x positions x 152k words) is what fills a GPU otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from trainer_client.grpo import entropy, token_logprobs
from trainer_client.rollout import Rollout, concat_inputs


@dataclass
class Batch:
    """`tokens` (B, P + C): prompt ids right-aligned in the first P columns, completion ids from column P;
    `completion` (B, C) marks the slots that hold a sampled token; `inputs` each row's video tensors."""

    tokens: torch.Tensor
    attention: torch.Tensor
    completion: torch.Tensor
    inputs: list[dict[str, torch.Tensor] | None]
    text_positions: bool  # pass position ids (text models); a video model derives its own from the mask

    @classmethod
    def of(cls, rollouts: Sequence[Rollout], pad_id: int, device: torch.device, *,
           inputs: Sequence[dict[str, torch.Tensor] | None] | None = None, text_positions: bool = True) -> Batch:
        prompt_width = max(len(r.prompt_ids) for r in rollouts)
        width = max(len(r.completion_ids) for r in rollouts)
        tokens = torch.full((len(rollouts), prompt_width + width), pad_id, dtype=torch.long)
        attention = torch.zeros_like(tokens)
        completion = torch.zeros((len(rollouts), width), dtype=torch.bool)
        for row, r in enumerate(rollouts):
            p, c = len(r.prompt_ids), len(r.completion_ids)
            tokens[row, prompt_width - p:prompt_width + c] = torch.tensor(r.prompt_ids + r.completion_ids)
            attention[row, prompt_width - p:prompt_width + c] = 1
            completion[row, :c] = True
        rows: list[dict[str, torch.Tensor] | None] = list(inputs) if inputs is not None else [None] * len(rollouts)
        return cls(tokens.to(device), attention.to(device), completion.to(device), rows, text_positions)

    @property
    def width(self) -> int:
        return self.completion.shape[1]

    @property
    def targets(self) -> torch.Tensor:
        return self.tokens[:, -self.width:]

    def rows(self, index: torch.Tensor) -> Batch:
        return Batch(self.tokens[index], self.attention[index], self.completion[index],
                     [self.inputs[i] for i in index.tolist()], self.text_positions)

    def chunks(self, size: int) -> Iterator[tuple[torch.Tensor, Batch]]:
        for start in range(0, len(self.tokens), size):
            index = torch.arange(start, min(start + size, len(self.tokens)), device=self.tokens.device)
            yield index, self.rows(index)

    def model_kwargs(self) -> dict[str, Any]:
        videos = {k: v.to(self.tokens.device) for k, v in concat_inputs(self.inputs).items()}
        kwargs: dict[str, Any] = {"input_ids": self.tokens, "attention_mask": self.attention,
                                  "logits_to_keep": self.width + 1, **videos}
        if self.text_positions:  # left padding: positions count real tokens only
            kwargs["position_ids"] = (self.attention.cumsum(-1) - 1).clamp(min=0)
        return kwargs


def forward_logprobs(model: Any, batch: Batch, temperature: float, *, with_entropy: bool = False,
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probabilities (B, C) of the completion slots' tokens (and their entropies, if asked)."""
    logits = model(**batch.model_kwargs()).logits[:, :-1]  # the position before each completion slot
    logp = token_logprobs(logits, batch.targets, temperature)
    return logp, entropy(logits.detach(), temperature) if with_entropy else None


@torch.no_grad()
def batched_logprobs(model: Any, batch: Batch, temperature: float, size: int) -> torch.Tensor:
    return torch.cat([forward_logprobs(model, part, temperature)[0] for _, part in batch.chunks(size)])
