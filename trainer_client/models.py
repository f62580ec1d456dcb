"""Where the trainer gets its policy: the one seam between the loop and how a model is built.

* `model: tiny`: a Qwen2-style decoder and a word-level tokenizer built in code over the run's corpus
  (`trainer_client.tiny`), for CPU runs and tests;
* any other value: a transformers model directory or hub id, loaded with `AutoModelForCausalLM` and
  `AutoTokenizer` (video models plug in here).

Then, as the config asks: LoRA adapters (peft) on the named modules, so one GPU trains a 7B model (the
optimizer holds the adapters' state only, and the KL's reference policy is the same model with its
adapters switched off: no second copy); gradient checkpointing; bf16 weights.

`reference_copy` makes the frozen reference policy of the KL term when there are no adapters.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainer_client.config import TrainConfig
from trainer_client.policy_weights import is_peft_model

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class Policy:
    model: Any  # a transformers causal LM, or a video model (Qwen2.5-VL), possibly with LoRA adapters
    tokenizer: Any
    device: torch.device

    @property
    def is_video_model(self) -> bool:
        return hasattr(self.model.config, "vision_config")

    @property
    def video_token_id(self) -> int | None:
        token_id: int | None = getattr(self.model.config, "video_token_id", None)
        return token_id if self.is_video_model else None


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_policy(config: TrainConfig, corpus: Sequence[str] = (), tokenizer_dir: str | Path | None = None) -> Policy:
    """The policy to train. A tiny model's vocabulary is read from `corpus` (every prompt and target
    text of the run), or loaded from `tokenizer_dir` when resuming, so ids never shift under a checkpoint."""
    device = pick_device(config.device)
    model: Any
    if config.model == "tiny":
        from transformers import PreTrainedTokenizerFast

        from trainer_client.tiny import tiny_qwen2, vocabulary_of, word_tokenizer

        if tokenizer_dir is not None:
            tokenizer = PreTrainedTokenizerFast.from_pretrained(str(tokenizer_dir))
        else:
            tokenizer = word_tokenizer(vocabulary_of(corpus))
        model = tiny_qwen2(tokenizer, hidden=config.tiny_hidden, layers=config.tiny_layers, heads=config.tiny_heads,
                           kv_heads=max(1, config.tiny_heads // 2), intermediate=4 * config.tiny_hidden,
                           seed=config.seed)
    else:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir or config.model), padding_side="left")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        # a video model (Qwen2.5-VL, Qwen3-VL) is an image-text-to-text model, not a causal LM, to transformers
        video = hasattr(AutoConfig.from_pretrained(config.model), "vision_config")
        auto = AutoModelForImageTextToText if video else AutoModelForCausalLM
        model = auto.from_pretrained(config.model, dtype=DTYPES[config.dtype])
    model.to(device=device, dtype=DTYPES[config.dtype])
    for module in model.modules():  # the ratio compares one policy's log-probabilities computed twice:
        if isinstance(module, torch.nn.Dropout):  # dropout would make them differ (TRL turns it off too)
            module.p = 0.0
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False  # the cache is for generation, which asks for it (HFEngine)
    if config.lora_r:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                          target_modules=list(config.lora_target_modules), task_type="CAUSAL_LM")
        model = get_peft_model(model, lora)
    model.train()
    return Policy(model, tokenizer, device)


def is_lora(model: Any) -> bool:
    return is_peft_model(model)


def reference_copy(model: Any) -> Any:
    """A frozen copy of `model` for the KL term (with LoRA, none is needed: see `is_lora`)."""
    reference = copy.deepcopy(model)
    reference.eval()
    reference.requires_grad_(False)
    return reference
