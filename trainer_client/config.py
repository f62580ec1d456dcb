"""The trainer's configuration: one typed object, read from YAML, every field overridable by a flag.

    grpo-train --config run.yaml --lr 1e-6 --steps 200

Flags are the field names with `-` for `_`; a value is parsed as YAML (`--reward-config '{weights:
{graph_node: 1.0}}'`). Unknown keys, values of the wrong type and contradictions are errors that name
the field. The merged config is written to `<output_dir>/config.yaml`, beside the run's outputs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trainer_client.grpo import AdvantageMode, Aggregation


class ConfigError(ValueError):
    """A config that cannot run; the message names the field."""


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # run
    output_dir: str = "runs/grpo"
    seed: int = 0
    steps: int = Field(default=200, ge=1)
    resume: bool = Field(default=False, description="continue from the latest checkpoint in output_dir")
    checkpoint_every: int = Field(default=50, ge=1)
    # reward service
    service_url: str | None = Field(default=None, description="default: REWARD_SERVICE_URL, else 127.0.0.1:8000")
    service_api_key: str | None = Field(default=None, description="default: REWARD_SERVICE_API_KEY")
    spawn_service: bool = Field(default=False, description="start `reward-service serve` on 127.0.0.1 for the run")
    reward_config: dict[str, Any] | None = Field(default=None, description="partial reward config for every request")
    # data
    train_data: str = Field(default="synthetic", description="a dataset JSONL, or 'synthetic' (text tasks)")
    eval_data: str | None = Field(default=None, description="held-out JSONL (default: synthetic from another seed)")
    skip_bad_lines: bool = False
    synthetic_train: int = Field(default=2000, ge=1)
    eval_size: int = Field(default=64, ge=1, description="held-out prompts when eval_data is not given: from "
                           "the generator with another seed, or split off train_data (seeded)")
    synthetic_task_types: list[str] = Field(default_factory=lambda: ["multiple_choice"])
    synthetic_objects: tuple[int, int] = (3, 4)
    synthetic_frames: tuple[int, int] = (1, 1)
    prompt_instructions: bool = Field(default=True, description="prepend the written instructions to prompts")
    video_frames: int = Field(default=16, ge=1, description="frames sampled uniformly from each record's video")
    video_max_pixels: int = Field(default=768 * 28 * 28, ge=28 * 28, description="pixel budget of a frame")
    video_min_pixels: int = Field(default=128 * 28 * 28, ge=28 * 28)
    video_root: str | None = Field(default=None, description="folder that relative video paths are under")
    skip_bad_videos: bool = Field(default=False, description="skip (and count) a record whose video cannot be "
                                  "read, instead of stopping")
    # model
    model: str = Field(default="tiny", description="a transformers model path, or 'tiny' (built in code)")
    tiny_hidden: int = 64
    tiny_layers: int = 2
    tiny_heads: int = 4
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = Field(default="auto", description="'auto': cuda when there is one, else cpu")
    lora_r: int = Field(default=0, ge=0, description="LoRA rank (peft); 0 trains every weight")
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.0, ge=0, lt=1)
    lora_target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    gradient_checkpointing: bool = Field(default=False, description="recompute activations in backward (memory)")
    # sampling
    engine: Literal["hf", "vllm"] = Field(default="hf", description="hf: transformers generate (CPU or GPU); "
                                          "vllm: vLLM colocated on each rank's GPU (the [vllm] extra)")
    vllm_gpu_memory_utilization: float = Field(default=0.3, gt=0, le=1, description="share of the GPU for vLLM")
    vllm_sleep_mode: bool = Field(default=True, description="free vLLM's memory while the trainer updates")
    vllm_max_model_len: int | None = Field(default=None, ge=1)
    vllm_push_adapters: bool = Field(default=False, description="with LoRA: push adapters (vLLM's LoRA) instead "
                                     "of merged weights")
    # several processes (accelerate launch): each samples its own prompts_per_step and scores its own groups
    prompts_per_step: int = Field(default=8, ge=1)
    group_size: int = Field(default=8, ge=2, description="G: completions per prompt")
    temperature: float = Field(default=1.0, gt=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_new_tokens: int = Field(default=64, ge=1)
    # GRPO
    advantages: AdvantageMode = "grpo"
    loss_aggregation: Aggregation = "token_mean"
    clip_low: float = Field(default=0.2, ge=0)
    clip_high: float = Field(default=0.28, ge=0)
    beta: float = Field(default=0.04, ge=0, description="KL coefficient; 0 needs no reference model")
    updates_per_batch: int = Field(default=1, ge=1, description="optimizer passes over each batch of rollouts")
    minibatch_size: int = Field(default=64, ge=1, description="rollouts per optimizer step")
    micro_batch_size: int | None = Field(default=None, ge=1, description="rollouts per forward pass (gradients "
                                         "accumulate over a minibatch's); default: the whole minibatch")
    lr: float = Field(default=1e-4, gt=0)
    lr_schedule: Literal["constant", "cosine", "linear"] = "constant"
    lr_warmup_steps: int = Field(default=0, ge=0)
    weight_decay: float = Field(default=0.0, ge=0)
    max_grad_norm: float = Field(default=1.0, gt=0)
    # supervised warm-up (references with graphs: a random model never writes the format by chance)
    warmup_steps: int = Field(default=0, ge=0)
    warmup_lr: float = Field(default=1e-3, gt=0)
    warmup_batch: int = Field(default=32, ge=1)
    warmup_position_noise: float = Field(default=0.3, ge=0, le=1)
    warmup_answer_noise: float = Field(default=1.0, ge=0, le=1)
    # evaluation
    eval_every: int = Field(default=50, ge=0, description="0: only before and after training")
    eval_samples: int = Field(default=8, ge=1, description="sampled completions per held-out prompt")
    eval_greedy: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        rollouts = self.prompts_per_step * self.group_size
        if rollouts % self.minibatch_size and self.minibatch_size < rollouts:
            raise ValueError(f"minibatch_size {self.minibatch_size} must divide the {rollouts} rollouts of a step")
        if self.video_min_pixels > self.video_max_pixels:
            raise ValueError("video_min_pixels is above video_max_pixels")
        if self.synthetic_objects[0] > self.synthetic_objects[1] or self.synthetic_frames[0] > self.synthetic_frames[1]:
            raise ValueError("synthetic_objects and synthetic_frames are (least, most) ranges")
        if self.engine == "vllm" and self.model == "tiny":
            raise ValueError("engine vllm loads a saved model directory: give model a path (scripts/gpu-smoke.sh "
                             "builds a tiny one)")
        if self.lora_r and self.warmup_steps:
            raise ValueError("the warm-up trains every weight, while with LoRA the KL's reference is the base "
                             "model: warm up without LoRA, save, then train LoRA on that model")
        if self.vllm_push_adapters and not self.lora_r:
            raise ValueError("vllm_push_adapters needs LoRA (lora_r > 0)")
        return self

    def write(self, directory: str | os.PathLike[str]) -> Path:
        path = Path(directory) / "config.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False))
        return path


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="grpo-train", description="GRPO training against the reward service.",
                                argument_default=argparse.SUPPRESS)
    p.add_argument("--config", help="YAML file of TrainConfig fields")
    for name, info in TrainConfig.model_fields.items():
        default = info.default_factory() if info.default_factory else info.default  # type: ignore[call-arg]
        p.add_argument(_flag(name), dest=name, metavar="VALUE",
                       help=f"{info.description or name} (default: {default!r})")
    return p


def load_config(argv: list[str] | None = None) -> TrainConfig:
    """The YAML file named by --config, with every other flag's value (read as YAML) over it."""
    args = vars(parser().parse_args(argv))
    values: dict[str, Any] = {}
    path = args.pop("config", None)
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"--config {path}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"--config {path}: expected a mapping of TrainConfig fields")
        values.update(loaded)
    for name, text in args.items():
        if TrainConfig.model_fields[name].annotation in (str, str | None):
            values[name] = text  # a key or a path is text, even when it looks like a number
            continue
        try:
            values[name] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{_flag(name)}: {exc}") from None
    try:
        return TrainConfig.model_validate(values)
    except ValidationError as exc:
        issues = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg'].removeprefix('Value error, ')}"
                           for e in exc.errors(include_url=False))
        raise ConfigError(f"invalid training config: {issues}") from None
