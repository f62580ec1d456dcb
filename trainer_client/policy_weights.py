"""The trained policy's weights as a checkpoint names them: what a rollout engine loads after an update.

A plain transformers model's `named_parameters()` already carry checkpoint names (for Qwen2.5-VL
`model.language_model.layers.0.self_attn.q_proj.weight`, `model.visual.blocks.0...`, `lm_head.weight`;
tied weights appear once). A peft LoRA model wraps them (`base_model.model.` in front, `.base_layer.`
inside each adapted layer, `lora_A`/`lora_B` beside it), so for an engine that loads full weights the
adapted layers are given merged, `W + scale * B @ A`, under their plain names.

The merge is computed beside the base weight, never in it. peft's `merge_adapter()`/`unmerge_adapter()`
(what TRL's colocate mode does around each sync) adds the delta into a bf16 weight and subtracts it
again: each round trip rounds the frozen base once more, a drift that grows with every step of a run.
Here one rounding happens per sync, on the copy that leaves, and the base stays bit-for-bit as loaded
(a test checks both).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch


class UnsupportedAdapter(ValueError):
    """An adapter kind whose merged weights are not `W + scale * B @ A` (DoRA and other variants, a
    LoRA bias): push it as an adapter instead, or merge it into the model before training."""


def is_peft_model(model: Any) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # peft comes with [trainer]; without it no model is a peft model
        return False
    return isinstance(model, PeftModel)


def checkpoint_name(name: str, adapter: str = "default") -> str:
    """`name` as `named_parameters()` gives it, under the name of the checkpoint the engine loaded."""
    name = name.removeprefix("base_model.model.").replace(".base_layer.", ".")
    return name.replace(f".modules_to_save.{adapter}.", ".")


def _lora_layers(model: Any) -> dict[str, Any]:
    """The LoRA layers with an active, unmerged adapter, by the parameter name of their base weight."""
    from peft.tuners.lora import LoraLayer

    layers: dict[str, Any] = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and not module.disable_adapters and _adapters(module):
            layers[f"{name}.base_layer.weight"] = module
    return layers


def _adapters(layer: Any) -> list[str]:
    own = set(layer.lora_A) | set(layer.lora_embedding_A)
    return [a for a in layer.active_adapters if a in own and a not in layer.merged_adapters]


def _merged(layer: Any, base: torch.Tensor) -> torch.Tensor:
    merged = base
    for adapter in _adapters(layer):
        if adapter in layer.lora_variant or layer.lora_bias.get(adapter, False):
            raise UnsupportedAdapter(f"adapter {adapter!r} of {type(layer).__name__} is not plain LoRA "
                                     "(DoRA or another variant, or a LoRA bias): push it as an adapter instead")
        merged = merged + layer.get_delta_weight(adapter).to(base.dtype)  # a new tensor: the base is untouched
    return merged


def _skipped(name: str) -> bool:
    """peft's own tensors, which no checkpoint of the base model holds."""
    return ".lora_" in name or ".original_module." in name


def checkpoint_shapes(model: Any) -> Iterator[tuple[str, torch.dtype, tuple[int, ...]]]:
    """(name, dtype, shape) of each tensor `checkpoint_tensors` yields, in the same order, computing nothing."""
    peft = is_peft_model(model)
    adapter = model.active_adapter if peft else "default"
    for name, param in model.named_parameters():
        if peft and _skipped(name):
            continue
        yield checkpoint_name(name, adapter), param.dtype, tuple(param.shape)


@torch.no_grad()
def checkpoint_tensors(model: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """Each weight of `model` under its checkpoint name; LoRA layers merged out of place."""
    if not is_peft_model(model):
        for name, param in model.named_parameters():
            yield name, param.detach()
        return
    layers = _lora_layers(model)
    for name, param in model.named_parameters():
        if _skipped(name):
            continue
        tensor = param.detach()
        if name in layers:
            tensor = _merged(layers[name], tensor)
        yield checkpoint_name(name, model.active_adapter), tensor
