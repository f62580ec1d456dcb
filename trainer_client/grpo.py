"""The GRPO maths, in torch: group advantages, the clipped surrogate, the KL to a reference policy, and
how per-token losses become one number.

* `group_advantages`: api.md's rule, the same numbers the service returns for `advantages`:
  `grpo` (r - mean) / (std + 1e-6) with Bessel's correction, `dr_grpo` r - mean (Dr. GRPO: no std
  division, which favours low-variance groups), `rloo` r minus the mean of the group's others. Masked
  items (reward NaN: the service could not score them) are left out of their group's statistics and
  get 0; so does a group of one. A group whose scored rewards are all equal carries no signal: its
  advantages are 0 and it is counted.
* `token_losses`: the PPO-style clipped surrogate with separate low and high clip ranges (DAPO's
  "clip higher" keeps exploration alive), plus beta times the k3 estimator of KL(policy || reference),
  exp(r - l) - (r - l) - 1 with l, r the policy's and the reference's token log-probabilities: unbiased,
  always >= 0, low variance (Schulman's "Approximating KL divergence").
* `aggregate`: `token_mean` (every token of the batch weighs the same, DAPO), `sequence_mean` (each
  sequence's mean, then the mean over sequences: GRPO as published, which favours short answers), or
  `dr_grpo` (the token sum over a constant, sequences x max completion tokens: Dr. GRPO, no length bias).
  The denominators are given for the whole batch, so micro-batches add up to the same gradient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

AdvantageMode = Literal["grpo", "dr_grpo", "rloo"]
Aggregation = Literal["token_mean", "sequence_mean", "dr_grpo"]
ADVANTAGE_MODES: tuple[AdvantageMode, ...] = ("grpo", "dr_grpo", "rloo")
AGGREGATIONS: tuple[Aggregation, ...] = ("token_mean", "sequence_mean", "dr_grpo")


@dataclass(frozen=True)
class Advantages:
    values: torch.Tensor  # (N,) float64; 0 for masked items
    scored: torch.Tensor  # (N,) bool: the item has a reward
    flat_groups: int  # groups with no signal: all scored rewards equal, or fewer than two scored


def group_advantages(rewards: torch.Tensor, groups: torch.Tensor, mode: AdvantageMode) -> Advantages:
    """`rewards` (N,) with NaN for masked items, `groups` (N,) integer group ids."""
    if mode not in ADVANTAGE_MODES:
        raise ValueError(f"unknown advantage mode {mode!r}; one of {', '.join(ADVANTAGE_MODES)}")
    r = rewards.to(torch.float64)
    scored = ~torch.isnan(r)
    ids, index = torch.unique(groups, return_inverse=True)
    k = len(ids)
    value = torch.where(scored, r, torch.zeros_like(r))
    count = torch.zeros(k, dtype=torch.float64).index_add_(0, index, scored.to(torch.float64))
    total = torch.zeros(k, dtype=torch.float64).index_add_(0, index, value)
    mean = total / count.clamp(min=1)
    centred = torch.where(scored, r - mean[index], torch.zeros_like(r))
    n = count[index]
    sq = torch.zeros(k, dtype=torch.float64).index_add_(0, index, centred**2)
    if mode == "grpo":
        std = torch.sqrt(sq / (count - 1).clamp(min=1))
        adv = centred / (std[index] + 1e-6)
    elif mode == "dr_grpo":
        adv = centred
    else:  # rloo: r - (total - r) / (n - 1) = n / (n - 1) * (r - mean)
        adv = centred * n / (n - 1).clamp(min=1)
    adv = torch.where(scored & (n > 1), adv, torch.zeros_like(adv))
    flat = sum(1 for g in range(k) if len(set(r[(index == g) & scored].tolist())) < 2)  # no two rewards differ
    return Advantages(adv, scored, flat)


@dataclass(frozen=True)
class TokenLosses:
    loss: torch.Tensor  # (B, T) per-token loss, to aggregate under the completion mask
    clipped: torch.Tensor  # (B, T) bool: the clip was active (the token gives no gradient to the surrogate)
    kl: torch.Tensor | None  # (B, T) k3 estimate, when a reference was given


def token_losses(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, *, clip_low: float,
                 clip_high: float, ref_logp: torch.Tensor | None = None, beta: float = 0.0) -> TokenLosses:
    """Per-token GRPO loss: -min(ratio * A, clip(ratio, 1 - clip_low, 1 + clip_high) * A) + beta * k3."""
    ratio = torch.exp(logp - old_logp)
    adv = advantages.to(logp.dtype).unsqueeze(-1)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high) * adv
    loss = -torch.minimum(unclipped, clipped)
    active = ((ratio < 1.0 - clip_low) & (adv < 0)) | ((ratio > 1.0 + clip_high) & (adv > 0))
    kl = None
    if ref_logp is not None:
        delta = ref_logp - logp
        kl = torch.exp(delta) - delta - 1.0
        loss = loss + beta * kl
    return TokenLosses(loss, active, kl)


def aggregate(values: torch.Tensor, mask: torch.Tensor, how: Aggregation, *, batch_tokens: float,
              batch_sequences: int, max_tokens: int) -> torch.Tensor:
    """One number from per-token `values` (B, T) under `mask` (B, T); `batch_tokens` and
    `batch_sequences` count the whole batch (micro-batches sum to the batch's value), `max_tokens` is
    Dr. GRPO's constant (the completion length limit)."""
    mask = mask.to(values.dtype)
    if how == "token_mean":
        return (values * mask).sum() / max(batch_tokens, 1.0)
    if how == "sequence_mean":
        per_sequence = (values * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)
        return per_sequence.sum() / max(batch_sequences, 1)
    if how == "dr_grpo":
        return (values * mask).sum() / (max(batch_sequences, 1) * max_tokens)
    raise ValueError(f"unknown aggregation {how!r}; one of {', '.join(AGGREGATIONS)}")


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log p(token) under softmax(logits / temperature), for each position: (B, T, V), (B, T) -> (B, T).
    The temperature is the sampling one, so ratios compare the distributions the tokens came from."""
    logits = logits.float() / temperature
    return torch.gather(logits, -1, tokens.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def entropy(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Per-position entropy of softmax(logits / temperature): (B, T, V) -> (B, T)."""
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    return -(logp.exp() * logp).sum(-1)
