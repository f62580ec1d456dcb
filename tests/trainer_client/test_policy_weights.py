"""The policy's weights under checkpoint names, LoRA merged beside the base weights, never in them."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from trainer_client.policy_weights import (  # noqa: E402
    UnsupportedAdapter,
    checkpoint_shapes,
    checkpoint_tensors,
    is_peft_model,
)
from trainer_client.tiny import tiny_qwen2, word_tokenizer  # noqa: E402

pytestmark = pytest.mark.trainer


def tiny() -> torch.nn.Module:
    return tiny_qwen2(word_tokenizer(["a", "b", "c"]), hidden=16, layers=2, heads=2, kv_heads=1, intermediate=32)


def with_lora(model: torch.nn.Module, **config: object) -> torch.nn.Module:
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "down_proj"],
                                                          **config))
    with torch.no_grad():  # a trained adapter: B is zero at initialisation, which would hide a wrong merge
        for name, param in wrapped.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    return wrapped


def test_a_plain_model_gives_its_own_parameters():
    model = tiny()
    got = list(checkpoint_tensors(model))
    assert [n for n, _ in got] == [n for n, _ in model.named_parameters()]
    assert all(t.data_ptr() == p.data_ptr() for (_, t), (_, p) in zip(got, model.named_parameters(), strict=True))
    assert not is_peft_model(model)


def test_lora_goes_out_merged_under_the_base_models_names():
    base = tiny()
    names = [n for n, _ in base.named_parameters()]
    model = with_lora(copy.deepcopy(base))
    got = dict(checkpoint_tensors(model))
    assert list(got) == names  # no lora_A/lora_B, no base_model.model. prefix, no .base_layer.
    merged = dict(copy.deepcopy(model).merge_and_unload().named_parameters())
    assert all(torch.equal(got[n], merged[n]) for n in names)
    changed = [n for n in names if not torch.equal(got[n], dict(base.named_parameters())[n])]
    assert changed and all("q_proj.weight" in n or "down_proj.weight" in n for n in changed)
    assert [(n, s) for n, _, s in checkpoint_shapes(model)] == [(n, tuple(t.shape)) for n, t in got.items()]


def test_the_base_weights_stay_as_loaded():
    """peft's merge_adapter/unmerge_adapter round trip would leave them rounded in bf16; out of place, nothing moves."""
    model = with_lora(tiny().to(torch.bfloat16))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for _ in range(3):
        list(checkpoint_tensors(model))
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())

    round_trip = with_lora(tiny().to(torch.bfloat16))
    for _ in range(3):
        round_trip.merge_adapter()
        round_trip.unmerge_adapter()
    drifted = [n for n, p in round_trip.named_parameters() if not torch.equal(p, before[n])]
    assert drifted  # what this module avoids: the frozen base moved


def test_a_dora_adapter_is_refused_rather_than_merged_wrong():
    model = with_lora(tiny(), use_dora=True)
    with pytest.raises(UnsupportedAdapter, match="adapter"):
        list(checkpoint_tensors(model))
