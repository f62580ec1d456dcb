"""VLLMEngine against a stand-in of vLLM 0.33 with its call signatures (vllm_standin.py): prompts,
rollouts, video inputs, weight pushes, sleep mode, LoRA; and, where vLLM is installed, the stand-in's
signatures against the real ones."""

from __future__ import annotations

import copy
import inspect
import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

import vllm_standin  # noqa: E402

from trainer_client import vllm_engine  # noqa: E402
from trainer_client.rollout import EnginePrompt, SamplingSettings  # noqa: E402
from trainer_client.tiny import tiny_qwen2, word_tokenizer  # noqa: E402
from trainer_client.vllm_engine import (  # noqa: E402
    INSTALL_HINT,
    VideoInputError,
    VLLMEngine,
    VLLMEngineError,
    VLLMNotInstalled,
)

pytestmark = pytest.mark.trainer

SAMPLED = SamplingSettings(temperature=0.7, top_p=1.0, max_new_tokens=12)
PROMPTS = [EnginePrompt("where is the chair ?"), EnginePrompt("count the cups"), EnginePrompt("is it moving ?")]


@dataclass
class Frames:
    """Frames as trainer_client.video.Frames offers them: the pixels and transformers' VideoMetadata fields."""

    pixels: np.ndarray
    fps: float = 2.0

    def metadata(self) -> dict[str, Any]:
        t = len(self.pixels)
        return {"fps": self.fps, "duration": t / self.fps, "total_num_frames": t * 4,
                "frames_indices": list(range(0, 4 * t, 4)), "video_backend": "pyav"}


@pytest.fixture
def policy(tmp_path) -> tuple[torch.nn.Module, str]:
    model = tiny_qwen2(word_tokenizer(["a", "b"]), hidden=16, layers=1, heads=2, kv_heads=1, intermediate=32)
    model.save_pretrained(tmp_path / "policy")  # the checkpoint the engine starts from
    return model, str(tmp_path / "policy")


@pytest.fixture
def standin(monkeypatch):
    vllm_standin.install(monkeypatch)
    monkeypatch.setenv("VLLM_ALLOW_INSECURE_SERIALIZATION", "0")  # recorded, so the engine's setting is undone
    return vllm_standin


def calls(engine: VLLMEngine) -> list[tuple[Any, ...]]:
    return engine.llm.calls


def first_logprobs(engine: VLLMEngine, prompt: EnginePrompt = PROMPTS[0]) -> list[float]:
    return engine.generate([prompt], 1, SamplingSettings(max_new_tokens=8, greedy=True))[0][0].logprobs


# ------------------------------------------------------------------------------ construction

def test_the_llm_is_built_for_colocated_rollouts(standin, policy):
    engine = VLLMEngine(policy[1], max_model_len=2048, seed=3)
    llm = engine.llm
    assert llm.model == policy[1] and llm.seed == 3 and llm.dtype == "bfloat16"
    assert llm.engine_args["logprobs_mode"] == "processed_logprobs"  # after temperature, as HFEngine's
    assert llm.engine_args["enable_sleep_mode"] is True and llm.engine_args["max_model_len"] == 2048
    assert llm.engine_args["limit_mm_per_prompt"] == {"image": 0, "video": 1}
    assert llm.engine_args["weight_transfer_config"].backend == "ipc"
    assert llm.insecure_serialization  # set before the engine-core process starts
    assert "enable_lora" not in llm.engine_args


def test_a_ranks_engine_starts_on_the_ranks_gpu(standin, policy, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    assert VLLMEngine(policy[1], gpu=2).llm.visible_devices == "6"  # local rank 2 of this node's four
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "4,5,6,7"  # the trainer's own view is given back
    assert VLLMEngine(policy[1]).llm.visible_devices == "4,5,6,7"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert VLLMEngine(policy[1], gpu=1).llm.visible_devices == "1"
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_without_vllm_the_engine_says_what_to_install(monkeypatch, policy):
    monkeypatch.setitem(sys.modules, "vllm", None)  # what `import vllm` meets where it is not installed
    with pytest.raises(VLLMNotInstalled) as caught:
        VLLMEngine(policy[1])
    assert str(caught.value) == INSTALL_HINT
    assert "pip install 'video-str-reward[vllm]'" in INSTALL_HINT and "torch 2.14.0" in INSTALL_HINT
    assert isinstance(caught.value, ImportError)


def test_a_drifted_call_fails_against_the_standin(standin, policy):
    """The stand-in binds every call to vLLM 0.33's parameters: a renamed argument is a TypeError."""
    llm = VLLMEngine(policy[1]).llm
    with pytest.raises(TypeError):
        standin.SamplingParams(max_new_tokens=8)  # vLLM calls it max_tokens
    with pytest.raises(TypeError):
        llm.generate(["x"], standin.SamplingParams(), lora_requests=None)
    with pytest.raises(TypeError):
        llm.sleep(levels=2)
    with pytest.raises(TypeError):
        standin.LLM(policy[1], enable_sleep=True)  # not an EngineArgs field
    with pytest.raises(standin.VLLMValidationError):
        standin.SamplingParams(n=4, temperature=0.0)  # greedy needs n=1


# ------------------------------------------------------------------------------ sampling

def test_text_prompts_give_n_rollouts_each_from_one_generate_call(standin, policy):
    engine = VLLMEngine(policy[1])
    groups = engine.generate(PROMPTS, 4, SAMPLED)
    assert [len(g) for g in groups] == [4, 4, 4]
    assert calls(engine) == [("generate", 3)]  # all prompts in one batched call
    params = engine.llm.sampling_params[-1]
    assert (params.n, params.temperature, params.top_p, params.top_k, params.max_tokens, params.logprobs) == \
        (4, 0.7, 1.0, 0, 12, 0)
    assert engine.llm.requests == [{"prompt": p.text} for p in PROMPTS]
    raw = engine.llm.generate([{"prompt": p.text} for p in PROMPTS], params, use_tqdm=False)
    for group, output in zip(groups, raw, strict=True):
        for rollout, completion in zip(group, output.outputs, strict=True):
            assert rollout.prompt_ids == output.prompt_token_ids
            assert rollout.completion_ids == completion.token_ids
            assert rollout.logprobs == [lp[t].logprob for lp, t in zip(completion.logprobs, completion.token_ids,
                                                                         strict=True)]
            assert rollout.text == completion.text and rollout.truncated == (completion.finish_reason == "length")
    assert len({tuple(r.completion_ids) for r in groups[0]}) > 1  # n samples, not one repeated
    assert engine.last_generate_s >= 0


def test_the_stop_token_is_kept_and_truncation_follows_the_finish_reason(standin, policy):
    engine = VLLMEngine(policy[1])
    engine.llm.eos_bias = 50.0  # the stop token comes first
    stopped = [r for g in engine.generate(PROMPTS, 2, SAMPLED) for r in g]
    assert all(r.completion_ids == [standin.EOS] and not r.truncated and r.text == "" for r in stopped)
    assert all(len(r.logprobs) == 1 for r in stopped)
    engine.llm.eos_bias = -50.0  # never
    cut = [r for g in engine.generate(PROMPTS, 2, SAMPLED) for r in g]
    assert all(r.truncated and r.num_tokens == SAMPLED.max_new_tokens and standin.EOS not in r.completion_ids
               for r in cut)


def test_greedy_is_one_completion_at_temperature_zero(standin, policy):
    engine = VLLMEngine(policy[1])
    greedy = SamplingSettings(max_new_tokens=6, greedy=True)
    groups = engine.generate(PROMPTS, 8, greedy)
    assert [len(g) for g in groups] == [1, 1, 1]
    params = engine.llm.sampling_params[-1]
    assert params.n == 1 and params.temperature == 0.0
    assert engine.generate(PROMPTS, 8, greedy) == groups


# ------------------------------------------------------------------------------ video

def test_a_video_goes_with_its_metadata_and_is_not_resampled(standin, policy):
    engine = VLLMEngine(policy[1])
    frames = Frames(np.zeros((4, 28, 28, 3), dtype=np.uint8))
    text = "<|vision_start|><|video_pad|><|vision_end|> where is the chair ?"
    engine.generate([EnginePrompt(text, {"video": frames})], 2, SAMPLED)
    (request,) = engine.llm.requests
    array, metadata = request["multi_modal_data"]["video"]
    assert request["prompt"] == text and array is frames.pixels
    assert metadata == {**frames.metadata(), "do_sample_frames": False}
    assert request["mm_processor_kwargs"] == {"do_sample_frames": False}


def test_bare_frames_are_refused_as_vllm_refuses_them(standin, policy):
    engine = VLLMEngine(policy[1])
    bare = np.zeros((4, 28, 28, 3), dtype=np.uint8)
    with pytest.raises(VideoInputError, match="bare ndarray"):
        engine.generate([EnginePrompt("x", {"video": bare})], 1, SAMPLED)
    with pytest.raises(ValueError, match="Video metadata is required"):  # what vLLM says for Qwen-VL
        engine.llm.generate([{"prompt": "x", "multi_modal_data": {"video": bare}}], standin.SamplingParams())

    class NoIndices(Frames):
        def metadata(self) -> dict[str, Any]:
            return {k: v for k, v in super().metadata().items() if k != "frames_indices"}

    with pytest.raises(VideoInputError, match="frames_indices"):
        engine.generate([EnginePrompt("x", {"video": NoIndices(bare)})], 1, SAMPLED)
    with pytest.raises(VideoInputError, match="uint8"):
        engine.generate([EnginePrompt("x", {"video": Frames(bare.astype(np.float32))})], 1, SAMPLED)
    with pytest.raises(VideoInputError, match="videos only"):
        engine.generate([EnginePrompt("x", {"image": bare[0]})], 1, SAMPLED)


# ------------------------------------------------------------------------------ weights

def perturb(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)


def test_sync_pushes_every_weight_then_resets_the_caches(standin, policy):
    model, path = policy
    engine = VLLMEngine(path)
    before = first_logprobs(engine)
    perturb(model)
    engine.sync_weights(model)

    received = engine.llm.weights
    assert set(received) == {n for n, _ in model.named_parameters()}
    assert all(torch.equal(received[n], p.detach()) for n, p in model.named_parameters())
    pushed = [c[0] for c in calls(engine)[1:]]
    assert pushed[:2] == ["init_weight_transfer_engine", "start_weight_update"]
    assert pushed[-3:] == ["finish_weight_update", "reset_prefix_cache", "reset_encoder_cache"]
    assert calls(engine)[1] == ("init_weight_transfer_engine", {"packed": True})
    assert first_logprobs(engine) != before  # the engine now samples from the new weights
    assert engine.last_sync_s >= 0

    perturb(model)
    engine.sync_weights(model)  # the trainer-side transfer engine is built once per model
    (sender,) = standin.WeightTransferTrainerFactory.built
    assert sender.rounds == 2
    assert all(torch.equal(engine.llm.weights[n], p.detach()) for n, p in model.named_parameters())


def test_pushes_come_in_chunks_no_larger_than_the_buffer_but_never_smaller_than_a_tensor(standin, policy,
                                                                                         monkeypatch):
    model, path = policy
    monkeypatch.setattr(vllm_engine, "PACK_BYTES", 1024)
    engine = VLLMEngine(path)
    perturb(model)
    engine.sync_weights(model)
    (sender,) = standin.WeightTransferTrainerFactory.built
    largest = max(p.numel() * p.element_size() for p in model.parameters())
    assert sender.info.packed and sender.info.packed_buffer_size_bytes == largest > 1024
    assert sum(c[0] == "update_weights" for c in calls(engine)) > 1
    assert all(torch.equal(engine.llm.weights[n], p.detach()) for n, p in model.named_parameters())


def test_sleep_frees_the_engine_and_sync_wakes_weights_before_the_push_and_the_kv_cache_after(standin, policy):
    model, path = policy
    engine = VLLMEngine(path)
    before = first_logprobs(engine)
    engine.sleep()
    assert calls(engine)[-2:] == [("sleep", 2), ("caches reset by sleep",)]
    with pytest.raises(VLLMEngineError, match="asleep"):
        engine.generate(PROMPTS, 2, SAMPLED)
    with pytest.raises(VLLMEngineError, match="discarded"):
        engine.wake_up()  # level 2 dropped the weights: only a push brings them back
    engine.sleep()  # twice is once
    assert sum(c[0] == "sleep" for c in calls(engine)) == 1

    engine.sync_weights(model)  # the weights are unchanged: the engine must sample exactly as before
    order = [c[0] if c[0] != "wake_up" else f"wake_up{list(c[1])}" for c in calls(engine)]
    tail = order[order.index("caches reset by sleep") + 1:]
    assert tail[:3] == ["wake_up['weights']", "init_weight_transfer_engine", "start_weight_update"]
    assert tail[-4:] == ["finish_weight_update", "wake_up['kv_cache']", "reset_prefix_cache",
                         "reset_encoder_cache"]
    assert first_logprobs(engine) == before
    assert engine.last_sleep_s >= 0


def test_without_sleep_mode_sleep_does_nothing(standin, policy):
    model, path = policy
    engine = VLLMEngine(path, enable_sleep_mode=False)
    engine.sleep()
    engine.wake_up()
    engine.sync_weights(model)
    assert not any(c[0] in ("sleep", "wake_up") for c in calls(engine))


def with_lora(model: torch.nn.Module, r: int = 8) -> torch.nn.Module:
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=r, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    train_lora(wrapped)
    return wrapped


def train_lora(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.add_(torch.randn_like(param) * 0.3)


def test_a_lora_policy_is_pushed_merged_under_the_checkpoint_names(standin, policy):
    base, path = policy
    names = {n for n, _ in base.named_parameters()}
    model = with_lora(copy.deepcopy(base))
    engine = VLLMEngine(path)
    engine.sync_weights(model)
    merged = dict(copy.deepcopy(model).merge_and_unload().named_parameters())
    assert set(engine.llm.weights) == names
    assert all(torch.equal(engine.llm.weights[n], merged[n]) for n in names)
    assert not torch.equal(merged["model.layers.0.self_attn.q_proj.weight"],
                           dict(base.named_parameters())["model.layers.0.self_attn.q_proj.weight"])


def test_adapter_pushes_save_a_new_adapter_and_drop_the_old(standin, policy):
    base, path = policy
    model = with_lora(copy.deepcopy(base))
    engine = VLLMEngine(path, lora_rank=8)
    assert engine.llm.engine_args["enable_lora"] and engine.llm.engine_args["max_lora_rank"] == 8
    before = first_logprobs(engine)
    engine.sleep()
    assert ("sleep", 1) in calls(engine)  # level 1: the base weights come back from CPU memory
    engine.sync_weights(model)
    assert calls(engine)[-4:] == [("wake_up", None), ("add_lora", 1), ("reset_prefix_cache",),
                                  ("reset_encoder_cache",)]
    v1 = first_logprobs(engine)
    request = engine.llm.lora_requests[-1]
    assert request.lora_int_id == 1 and os.path.exists(os.path.join(request.lora_path, "adapter_config.json"))
    assert v1 != before

    train_lora(model)
    engine.sync_weights(model)
    assert calls(engine)[-4:-2] == [("add_lora", 2), ("remove_lora", 1)]
    assert not os.path.exists(request.lora_path)
    assert first_logprobs(engine) != v1 and engine.llm.lora_requests[-1].lora_int_id == 2
    with pytest.raises(VLLMEngineError, match="peft"):
        engine.sync_weights(base)
    folder = os.path.dirname(engine.llm.lora_requests[-1].lora_path)
    engine.close()
    assert not os.path.exists(folder)


def test_an_adapter_above_the_engines_rank_is_refused(standin, policy):
    base, path = policy
    engine = VLLMEngine(path, lora_rank=8)
    with pytest.raises(ValueError, match="max_lora_rank"):
        engine.sync_weights(with_lora(copy.deepcopy(base), r=16))


# ------------------------------------------------------------------------------ the stand-in against vLLM

@pytest.mark.gpu
def test_the_standins_signatures_are_vllm_0_33s():
    """On a GPU node with vLLM installed: each stand-in callable accepts no call the real one refuses."""
    vllm = pytest.importorskip("vllm", reason="vLLM is installed on GPU nodes only (pip install '.[vllm]')")
    assert vllm.__version__.startswith("0.33."), vllm.__version__
    import dataclasses
    import importlib

    from vllm.engine.arg_utils import EngineArgs

    drift = []
    for dotted, standin in vllm_standin.API.items():
        real = _resolve(importlib, dotted)
        drift += [f"{dotted}: {problem}" for problem in _incompatible(inspect.signature(standin),
                                                                     inspect.signature(real))]
    fields = {f.name for f in dataclasses.fields(EngineArgs)}
    drift += [f"EngineArgs has no field {name}" for name in sorted(vllm_standin.ENGINE_ARGS - fields)]
    from vllm.distributed.weight_transfer import VLLMWeightSyncClient

    assert isinstance(vllm_engine._LLMClient(None), VLLMWeightSyncClient)
    assert not drift, "\n".join(drift)


def _resolve(importlib: Any, dotted: str) -> Any:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            target = getattr(target, attr)
        return target
    raise ImportError(dotted)


def _incompatible(standin: inspect.Signature, real: inspect.Signature) -> list[str]:
    problems = []
    real_params = real.parameters
    positional = [p.name for p in real_params.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    mine = [p.name for p in standin.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    for p in standin.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            if not any(q.kind is q.VAR_KEYWORD for q in real_params.values()):
                problems.append("takes **kwargs, vLLM does not")
            continue
        q = real_params.get(p.name)
        if q is None:
            problems.append(f"no parameter {p.name!r}")
            continue
        if p.default is not p.empty and q.default is not q.empty and p.default != q.default:
            problems.append(f"{p.name} defaults to {q.default!r}, not {p.default!r}")
        if p.kind is p.POSITIONAL_OR_KEYWORD and (q.kind is not p.kind or positional.index(p.name)
                                                  != mine.index(p.name)):
            problems.append(f"{p.name} is {q.kind.description} at another place")
    required = [q.name for q in real_params.values() if q.default is q.empty
                and q.kind not in (q.VAR_POSITIONAL, q.VAR_KEYWORD)]
    problems += [f"requires {name!r}" for name in required if name not in standin.parameters]
    return problems


def test_the_video_modules_frames_are_what_the_engine_takes(tmp_path):
    """trainer_client.video's Frames, as sampled from a file, go to vLLM with their metadata."""
    from reward_service.synth.scenes import generate_scene
    from trainer_client.data.synthetic_video import write_scene_video
    from trainer_client.video import sample_frames
    from trainer_client.vllm_engine import VideoFrames, video_item

    scene = generate_scene(np.random.default_rng(0), n_objects=3, n_frames=3, dim=2, moving=True)
    write_scene_video(scene, tmp_path / "v.mp4")
    frames = sample_frames(tmp_path / "v.mp4", 4)
    assert isinstance(frames, VideoFrames)
    array, metadata = video_item(frames)
    assert array is frames.pixels and metadata["do_sample_frames"] is False
    assert metadata["frames_indices"] == list(frames.indices)
