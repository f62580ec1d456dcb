"""Rollout engines: prompts in, G sampled completions per prompt out, with token ids, the sampled
tokens' log-probabilities and token counts.

`RolloutEngine` is the protocol the trainer drives. `HFEngine` samples with transformers' `generate`
from the very model being trained (CPU or one GPU; no weights to sync). The trainer recomputes the
ratio's old log-probabilities with the training model, as TRL and verl do; the engine's own are kept
to measure how far sampling and training disagree (the mismatch a separate engine such as vLLM brings).

A video prompt is the chat text with one `<|video_pad|>` per video and the sampled `Frames`;
`model_inputs` turns it into what Qwen2.5-VL takes (the placeholder expanded to the video's token
count, and the patches), for `HFEngine` and for the trainer's forward passes alike, so both see the
same tokens. vLLM does the same expansion with the processor, from the same frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from transformers import GenerationConfig

from trainer_client.grpo import token_logprobs


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    greedy: bool = False  # evaluation's deterministic decoding: one completion per prompt, whatever n is


@dataclass(frozen=True)
class EnginePrompt:
    """One prompt as an engine takes it: its text (chat template applied, if any) and, for video
    models, what the model's processor needs beside it."""

    text: str
    multimodal: dict[str, Any] | None = None


@dataclass(frozen=True)
class Rollout:
    prompt_ids: list[int]
    completion_ids: list[int]  # sampled tokens, the end-of-sequence token included when it was sampled
    logprobs: list[float]  # the engine's log-probability of each sampled token (at the sampling temperature)
    text: str  # the completion decoded without special tokens: what the reward service scores
    truncated: bool  # stopped by max_new_tokens rather than by end of sequence

    @property
    def num_tokens(self) -> int:
        return len(self.completion_ids)


def model_inputs(prompt: EnginePrompt) -> tuple[str, dict[str, torch.Tensor] | None]:
    """The prompt's text, its video placeholder expanded to the video's token count, and the video's
    tensors for the model; a text prompt as it is and None."""
    if not prompt.multimodal:
        return prompt.text, None
    from trainer_client.video import expand_video_tokens, qwen2_5_vl_video_inputs

    unknown = set(prompt.multimodal) - {"video"}
    if unknown:
        raise ValueError(f"prompts carry videos only, not {sorted(unknown)}")
    tensors = qwen2_5_vl_video_inputs(prompt.multimodal["video"])
    return expand_video_tokens(prompt.text, tensors["video_grid_thw"]), tensors


def concat_inputs(parts: Sequence[dict[str, torch.Tensor] | None]) -> dict[str, torch.Tensor]:
    """The video tensors of several prompts (or rows), one after another, as the model takes a batch."""
    present = [p for p in parts if p is not None]
    if not present:
        return {}
    return {key: torch.cat([p[key] for p in present]) for key in present[0]}


def check_video_tokens(rollouts: Sequence[Rollout], videos: Sequence[dict[str, torch.Tensor] | None], group_size: int,
                       video_token_id: int | None) -> None:
    """Each rollout's prompt must hold as many video placeholders as its frames give features: vLLM
    expands them with the model's processor, the trainer's tensors come from `model_inputs`."""
    if video_token_id is None:
        return
    from trainer_client.video import video_token_counts

    for row, rollout in enumerate(rollouts):
        tensors = videos[row // group_size]
        want = sum(video_token_counts(tensors["video_grid_thw"])) if tensors is not None else 0
        have = rollout.prompt_ids.count(video_token_id)
        if have != want:
            raise ValueError(f"the engine's prompt holds {have} video placeholders but its frames give {want} "
                             "features: keep video_min_pixels and video_max_pixels within the model "
                             "processor's (frames already in its budget are not resized again)")


class RolloutEngine(Protocol):
    """What the trainer needs of a sampler."""

    def generate(self, prompts: Sequence[EnginePrompt], n: int, settings: SamplingSettings) -> list[list[Rollout]]:
        """`n` completions for each prompt, in prompt order."""
        ...

    def sleep(self) -> None:
        """Free what the engine holds on the accelerator while the trainer updates (a colocated engine)."""
        ...

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Make the engine sample from `model`'s current weights (after an update); wakes it if asleep."""
        ...


VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|video_pad|>", "<|image_pad|>")


class HFEngine:
    """transformers' `generate`, batched over prompts, on the trained model itself."""

    def __init__(self, model: Any, tokenizer: Any, *, batch_size: int = 64) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size  # sequences per `generate` call (prompts x n)
        # A completion must never hold a video's markers: the forward pass would count a sampled
        # <|video_pad|> as a placeholder for video features that are not there (a young model samples them).
        vocab = tokenizer.get_vocab()
        self.suppressed = [vocab[t] for t in VISION_TOKENS if t in vocab] or None

    def sleep(self) -> None:
        pass  # it samples with the trained model itself: nothing of its own to free

    def sync_weights(self, model: torch.nn.Module) -> None:
        self.model = model  # the same object the optimizer updates: nothing to copy

    @torch.no_grad()
    def generate(self, prompts: Sequence[EnginePrompt], n: int, settings: SamplingSettings) -> list[list[Rollout]]:
        per_call = max(1, self.batch_size // n)
        out: list[list[Rollout]] = []
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(prompts), per_call):
                out.extend(self._generate(prompts[start:start + per_call], n, settings))
        finally:
            self.model.train(was_training)
        return out

    def _generate(self, prompts: Sequence[EnginePrompt], n: int, settings: SamplingSettings) -> list[list[Rollout]]:
        tok = self.tokenizer
        texts, videos = zip(*(model_inputs(p) for p in prompts), strict=True)
        enc = tok(list(texts), return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
        enc = {k: v.to(self.model.device) for k, v in {**enc, **concat_inputs(videos)}.items()}
        # A fresh generation config, not the model's: a checkpoint's own (Qwen2.5-VL-Instruct ships a
        # repetition penalty, top_k and top_p) would sample from another distribution than the one whose
        # log-probabilities the trainer computes.
        config = GenerationConfig(
            do_sample=not settings.greedy, temperature=1.0 if settings.greedy else settings.temperature,
            top_p=1.0 if settings.greedy else settings.top_p, top_k=0, repetition_penalty=1.0,
            max_new_tokens=settings.max_new_tokens, num_return_sequences=1 if settings.greedy else n,
            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, use_cache=True,
            return_dict_in_generate=True, output_logits=True, suppress_tokens=self.suppressed)
        result = self.model.generate(**enc, generation_config=config)
        width = enc["input_ids"].shape[1]
        new = result.sequences[:, width:]
        temperature = 1.0 if settings.greedy else settings.temperature
        logprobs = token_logprobs(torch.stack(result.logits, dim=1), new, temperature)  # (rows, new tokens)
        copies = 1 if settings.greedy else n
        groups: list[list[Rollout]] = []
        for p in range(len(prompts)):
            prompt_ids = [int(t) for t, m in zip(enc["input_ids"][p], enc["attention_mask"][p], strict=True) if m]
            group = []
            for row in range(p * copies, (p + 1) * copies):
                ids = new[row].tolist()
                end = ids.index(tok.eos_token_id) + 1 if tok.eos_token_id in ids else len(ids)
                group.append(Rollout(prompt_ids, ids[:end], logprobs[row, :end].tolist(),
                                     tok.decode(ids[:end], skip_special_tokens=True),
                                     truncated=tok.eos_token_id not in ids[:end]))
            groups.append(group)
        return groups
