"""`VLLMEngine`: rollouts from vLLM 0.33, colocated with the trainer on its GPU, weights pushed after each update.

Two environments. CPU (CI, these tests): torch 2.13.0 CPU, then `pip install -e '.[dev]'`; vLLM is not
installed and this module imports it only inside `VLLMEngine(...)`, which then raises `VLLMNotInstalled`
with the install line. GPU nodes: `pip install '.[trainer,vllm]'`; vLLM 0.33 pins torch 2.14.0, which
the `[trainer]` range admits, so that one resolve replaces the CPU torch (README: GPU install).

The order a colocated training step must follow (`sync_weights` is the only way back from a sleep):

    rollouts = engine.generate(prompts, G, settings)   # engine awake: weights + KV cache on the GPU
    engine.sleep()                                      # frees them for the trainer (no-op without sleep mode)
    ... log-probabilities, loss.backward(), optimizer.step() ...
    engine.sync_weights(model)                          # wakes what it needs, pushes, resets the caches
    engine.generate(...)                                # samples from the updated policy

vLLM 0.33's API as used here, read in the 0.33.0 wheel (paths under `vllm/`) with the docs pages on
docs.vllm.ai/en/v0.33.0/ (where page and wheel differ, the wheel wins; tests/trainer_client/vllm_standin.py
records the signatures and a GPU test compares them with the installed vLLM):

* `LLM(model, *, tokenizer, dtype, seed, gpu_memory_utilization, enforce_eager, **EngineArgs)`
  (`entrypoints/llm.py`; api/vllm/entrypoints/llm/). Through `**kwargs` into `EngineArgs`
  (`engine/arg_utils.py`): `max_model_len`, `enable_sleep_mode`, `limit_mm_per_prompt`, `enable_lora`,
  `max_lora_rank` (1, 8, 16, 32, 64, 128, 256, 320 or 512), `logprobs_mode`, `weight_transfer_config`.
  `logprobs_mode="processed_logprobs"` (`config/model.py`): log-probabilities after the temperature, as
  HFEngine's are (and renormalised over the nucleus when top_p < 1, which HFEngine's are not); the
  default, raw, would ignore the temperature.
* `LLM.generate(prompts, sampling_params, *, use_tqdm, lora_request, ...)` -> `list[RequestOutput]` in
  prompt order. A prompt is a dict (`inputs/llm.py`, TextPrompt): `prompt`, `multi_modal_data`,
  `mm_processor_kwargs`. A video is `(frames, metadata)`, frames a (T, H, W, 3) uint8 array, metadata
  transformers' `VideoMetadata` fields (`multimodal/inputs.py`, VideoItem; features/multimodal_inputs/).
  Qwen2.5-VL and Qwen3-VL parse videos with `video_needs_metadata=True` (`model_executor/models/
  qwen2_5_vl.py`, `qwen3_vl.py`) and refuse bare frames ("Video metadata is required but not found",
  `multimodal/parse.py`). `do_sample_frames: False` goes both in the metadata (vLLM's own loader and
  Qwen3-VL read it there) and in `mm_processor_kwargs` (routed to the HF video processor; Qwen3-VL's
  samples frames by default), so frames sampled by trainer_client.video are never resampled.
* `SamplingParams(n, temperature, top_p, top_k, max_tokens, logprobs, skip_special_tokens, ...)`
  (`sampling_params.py`; api/vllm/sampling_params/): `temperature=0` is greedy and then needs `n=1`;
  `logprobs=0` returns only the sampled token's log-probability; temperature must lie in [0, 2].
* `RequestOutput.prompt_token_ids`, `.outputs[i]` (`outputs.py`; api/vllm/outputs/): `CompletionOutput`
  `.index`, `.token_ids` (the stop token included when sampled), `.text` (special tokens skipped),
  `.logprobs` (one `{token_id: Logprob(logprob, rank, decoded_token)}` per token, `logprobs.py`),
  `.finish_reason` ("stop" or "length").
* Weights (training/weight_transfer/, training/weight_transfer/ipc/, examples/rl/rlhf_ipc.py):
  `LLM(weight_transfer_config=WeightTransferConfig(backend="ipc"))` (`config/weight_transfer.py`);
  trainer side `WeightTransferTrainerFactory.trainer_init(IPCTrainerInitInfo(rank=0, packed=True,
  packed_buffer_size_bytes=...), client=..., source=WeightSource)` then `send_weights()` per sync
  (`distributed/weight_transfer/{factory,base,ipc_engine}.py`). `send_weights` drives the LLM's
  `start_weight_update()`, `update_weights({"update_info": ...})` per packed chunk and
  `finish_weight_update()` (`entrypoints/rl/offline.py`); the worker loads each chunk with the model's
  `load_weights` inside a layerwise reload. CUDA IPC: the engine core is a separate process on the same
  GPU and reads the trainer's buffer in place; the handles cross vLLM's msgpack channel only with
  `VLLM_ALLOW_INSECURE_SERIALIZATION=1` (pickle; a local socket between our own processes).
* Caches: a weight update resets none. `LLM.reset_prefix_cache()` drops KV blocks computed with the
  old weights; `LLM.llm_engine.reset_encoder_cache()` (`v1/engine/llm_engine.py`) the cached vision
  embeddings, which the vision tower's update makes stale. Sleep at level >= 1 resets both itself
  (`v1/engine/core.py`, `_reset_caches`), level 0 and a sync without sleep do not.
* Sleep (features/sleep_mode/; `LLM.sleep(level=1, mode="abort")`, `LLM.wake_up(tags=None)`, needs
  `enable_sleep_mode=True`): level 1 offloads the weights to CPU memory and discards the KV cache;
  level 2 discards both. Full-weight sync uses level 2 (the weights are replaced anyway, so no 15 GB
  copy to CPU for a 7B model) and wakes `["weights"]` before the push and `["kv_cache"]` after, so the
  KV cache is not allocated while two copies of the weights are in flight. Adapter sync uses level 1:
  the base weights must come back as they were.
* LoRA (features/lora/; `lora/request.py`): `LoRARequest(lora_name, lora_int_id, lora_path)`, a peft
  adapter folder, loaded with `LLM.llm_engine.add_lora` and dropped with `remove_lora`.

LoRA: merged by default. For a peft model the adapted layers go out merged (trainer_client.
policy_weights), through the same IPC path as full weights: nothing is written to disk, rollouts run
at base-model speed with no LoRA kernels, and an adapter on the vision tower needs no experimental
tower flag. `lora_rank=...` selects adapter pushes instead (`enable_lora`): each sync saves the adapter
(tens of MB for rank 16 on 7B) under a new id; that suits trainers whose base weights may not be
resent, at the cost of a write and read per step and LoRA kernels in every decode step.
"""

from __future__ import annotations

import importlib
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from trainer_client.policy_weights import checkpoint_shapes, checkpoint_tensors, is_peft_model
from trainer_client.rollout import EnginePrompt, Rollout, SamplingSettings

INSTALL_HINT = ("--engine vllm needs vLLM on a GPU node: pip install 'video-str-reward[vllm]' "
                "(it pins torch 2.14.0; see README)")
VIDEO_METADATA = ("fps", "duration", "total_num_frames", "frames_indices")  # what Qwen-VL's processors read
FULL_SYNC_SLEEP, ADAPTER_SYNC_SLEEP = 2, 1  # sleep levels, see the module docstring
PACK_BYTES = 1 << 30  # vLLM's default IPC chunk (1 GiB); raised to the largest tensor (7B embeddings: 1.09 GB)


class VLLMNotInstalled(ImportError):
    """`--engine vllm` where vLLM is not installed (every CPU machine): the message says what to install."""


class VLLMEngineError(RuntimeError):
    """Misuse of the engine's life cycle, or vLLM answered something this module does not understand."""


class VideoInputError(ValueError):
    """A video prompt vLLM would refuse: frames without their metadata, or metadata that does not fit them."""


@runtime_checkable
class VideoFrames(Protocol):
    """What the engine needs of trainer_client.video's frames: the sampled, resized frames and their timing."""

    @property
    def pixels(self) -> np.ndarray: ...  # (T, H, W, 3) uint8

    def metadata(self) -> dict[str, Any]: ...  # transformers' VideoMetadata names


def video_item(frames: object) -> tuple[np.ndarray, dict[str, Any]]:
    """`(frames, metadata)` as vLLM takes one video, with `do_sample_frames` off."""
    if not isinstance(frames, VideoFrames):
        raise VideoInputError(f"a video needs its frames' metadata ({', '.join(VIDEO_METADATA)}), got a bare "
                              f"{type(frames).__name__}: vLLM refuses bare frames for Qwen2.5-VL and Qwen3-VL")
    array, metadata = frames.pixels, dict(frames.metadata())
    missing = [k for k in VIDEO_METADATA if k not in metadata]
    if missing:
        raise VideoInputError(f"video metadata lacks {missing}")
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise VideoInputError(f"frames must be a (T, H, W, 3) uint8 array, got {array.dtype} {array.shape}")
    if len(metadata["frames_indices"]) != len(array):
        raise VideoInputError(f"{len(array)} frames but {len(metadata['frames_indices'])} frames_indices")
    return array, {**metadata, "do_sample_frames": False}


def request_of(prompt: EnginePrompt) -> dict[str, Any]:
    """The prompt dict of `LLM.generate`: text only, or text with its video."""
    request: dict[str, Any] = {"prompt": prompt.text}
    if prompt.multimodal:
        unknown = set(prompt.multimodal) - {"video"}
        if unknown:
            raise VideoInputError(f"VLLMEngine passes videos only, not {sorted(unknown)}")
        request["multi_modal_data"] = {"video": video_item(prompt.multimodal["video"])}
        request["mm_processor_kwargs"] = {"do_sample_frames": False}
    return request


def rollouts_of(outputs: Sequence[Any], copies: int) -> list[list[Rollout]]:
    """`RequestOutput`s as groups of `Rollout`s, HFEngine's semantics."""
    groups = []
    for output in outputs:
        completions = sorted(output.outputs, key=lambda c: c.index)
        if len(completions) != copies:
            raise VLLMEngineError(f"asked {copies} completions of a prompt, vLLM returned {len(completions)}")
        prompt_ids = list(output.prompt_token_ids or [])
        group = []
        for c in completions:
            ids = list(c.token_ids)
            if c.logprobs is None or len(c.logprobs) != len(ids):
                raise VLLMEngineError("vLLM returned no log-probability for some sampled token")
            logprobs = [float(position[token].logprob) for position, token in zip(c.logprobs, ids, strict=True)]
            group.append(Rollout(prompt_ids, ids, logprobs, c.text, truncated=c.finish_reason == "length"))
        groups.append(group)
    return groups


class _LLMClient:
    """vLLM's `VLLMWeightSyncClient` (four methods) over the `LLM` of this process: its Ray and HTTP
    clients wrap remote engines, a colocated one is called directly."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm

    def init_weight_transfer_engine(self, init_info: dict[str, Any]) -> None:
        self.llm.init_weight_transfer_engine({"init_info": init_info})

    def start_weight_update(self) -> None:
        self.llm.start_weight_update()

    def update_weights(self, update_info: Any) -> None:
        self.llm.update_weights({"update_info": update_info})

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        self.llm.finish_weight_update(weight_version)


def _weight_sender(llm: Any, model: torch.nn.Module) -> Any:
    """vLLM's trainer-side IPC engine over `model`'s checkpoint-named (LoRA-merged) weights."""
    transfer = importlib.import_module("vllm.distributed.weight_transfer")
    ipc = importlib.import_module("vllm.distributed.weight_transfer.ipc_engine")
    source: Any = transfer.WeightSource

    class PolicyWeights(source):  # vLLM's ModuleSource would send peft's names and LoRA factors
        @cached_property
        def metadata(self) -> list[Any]:
            return [transfer.ParamMeta(name, dtype, shape) for name, dtype, shape in checkpoint_shapes(model)]

        def iter_full(self) -> Iterator[tuple[str, torch.Tensor]]:
            return checkpoint_tensors(model)

    largest = max(dtype.itemsize * math.prod(shape) for _, dtype, shape in checkpoint_shapes(model))
    # rank=0 on every trainer rank: each is the sender to its own colocated engine.
    info = ipc.IPCTrainerInitInfo(rank=0, packed=True, packed_buffer_size_bytes=max(PACK_BYTES, largest))
    return transfer.WeightTransferTrainerFactory.trainer_init(info, client=_LLMClient(llm), source=PolicyWeights())


def _free_cached_memory() -> None:
    """Hand the trainer's cached, unused GPU blocks back to the driver: vLLM wakes in another process, which
    cannot use memory this process's caching allocator still holds (TRL empties it before waking too)."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextmanager
def _only_visible(gpu: int | None) -> Iterator[None]:
    """While `LLM()` starts its engine-core process, let that process see only GPU `gpu` (an index among
    this process's visible GPUs). vLLM's single-GPU engine runs on its first visible GPU, so under
    `accelerate launch` (every rank sees every GPU) all ranks' engines would share GPU 0. The trainer's
    own CUDA context is already made and keeps its view; the IPC push finds GPUs by UUID, not index."""
    if gpu is None:
        yield
        return
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    visible = before.split(",") if before else [str(i) for i in range(max(torch.cuda.device_count(), gpu + 1))]
    os.environ["CUDA_VISIBLE_DEVICES"] = visible[gpu]
    try:
        yield
    finally:
        if before is None:
            del os.environ["CUDA_VISIBLE_DEVICES"]
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before


class VLLMEngine:
    """`RolloutEngine` on a vLLM `LLM` colocated with the trainer (see the module docstring for the order
    of calls). `last_generate_s`, `last_sleep_s`, `last_sync_s` time the latest call of each.

    One engine per trainer rank: pass `gpu=` the rank's GPU (its local rank under `accelerate launch`);
    every rank then calls `sync_weights` together, since vLLM's IPC push gathers handles over
    torch.distributed's default group."""

    def __init__(self, model_path: str, *, tokenizer: str | None = None, dtype: str = "bfloat16",
                 gpu_memory_utilization: float = 0.3, max_model_len: int | None = None,
                 enable_sleep_mode: bool = True, seed: int = 0, lora_rank: int | None = None,
                 limit_videos_per_prompt: int = 1, enforce_eager: bool = False, gpu: int | None = None,
                 **llm_kwargs: Any) -> None:
        try:
            vllm = importlib.import_module("vllm")
            self._lora_request_cls = importlib.import_module("vllm.lora.request").LoRARequest
            weight_transfer_config = importlib.import_module("vllm.config").WeightTransferConfig
        except ImportError as exc:
            raise VLLMNotInstalled(INSTALL_HINT) from exc
        self._sampling_params_cls = vllm.SamplingParams
        # The IPC handles of a weight push reach the engine-core process only through pickle (module
        # docstring), and that process reads its environment when LLM() starts it.
        os.environ["VLLM_ALLOW_INSECURE_SERIALIZATION"] = "1"
        if lora_rank is not None:  # adapter pushes (module docstring: LoRA)
            llm_kwargs.update(enable_lora=True, max_lora_rank=lora_rank)
        with _only_visible(gpu):
            self.llm = vllm.LLM(
                model_path, tokenizer=tokenizer, dtype=dtype, seed=seed,
                gpu_memory_utilization=gpu_memory_utilization, enforce_eager=enforce_eager,
                max_model_len=max_model_len, enable_sleep_mode=enable_sleep_mode,
                limit_mm_per_prompt={"image": 0, "video": limit_videos_per_prompt},
                logprobs_mode="processed_logprobs", weight_transfer_config=weight_transfer_config(backend="ipc"),
                **llm_kwargs)
        self.sleep_mode = enable_sleep_mode
        self.lora_rank = lora_rank
        self._asleep = 0  # the sleep level the engine is in, 0 when awake
        self._sender: tuple[torch.nn.Module, Any] | None = None  # (model, vLLM trainer engine) of the last sync
        self._adapters = tempfile.mkdtemp(prefix="vllm-lora-") if lora_rank is not None else None
        self._lora: Any = None  # the LoRARequest of the latest adapter
        self.last_generate_s = self.last_sleep_s = self.last_sync_s = math.nan

    # ------------------------------------------------------------------------------ sampling

    def generate(self, prompts: Sequence[EnginePrompt], n: int, settings: SamplingSettings) -> list[list[Rollout]]:
        """All prompts in one `LLM.generate` call, `n` completions each (one when greedy)."""
        if self._asleep:
            raise VLLMEngineError("the engine is asleep: sync_weights(model) wakes it after an update, "
                                  "wake_up() when nothing was updated")
        copies = 1 if settings.greedy else n
        params = self._sampling_params_cls(
            n=copies, temperature=0.0 if settings.greedy else settings.temperature,
            top_p=1.0 if settings.greedy else settings.top_p, top_k=0, max_tokens=settings.max_new_tokens,
            logprobs=0, skip_special_tokens=True)
        requests = [request_of(p) for p in prompts]
        t0 = time.perf_counter()
        outputs = self.llm.generate(requests, params, use_tqdm=False, lora_request=self._lora)
        self.last_generate_s = time.perf_counter() - t0
        if len(outputs) != len(prompts):
            raise VLLMEngineError(f"{len(prompts)} prompts but {len(outputs)} outputs")
        return rollouts_of(outputs, copies)

    # ------------------------------------------------------------------------------ memory

    def sleep(self) -> None:
        """Free the engine's GPU memory for the update (KV cache, and the weights: offloaded to CPU when
        adapters are pushed, discarded when the next sync resends them). A no-op without sleep mode."""
        if not self.sleep_mode or self._asleep:
            return
        level = ADAPTER_SYNC_SLEEP if self.lora_rank is not None else FULL_SYNC_SLEEP
        t0 = time.perf_counter()
        self.llm.sleep(level=level)
        self._asleep = level
        self.last_sleep_s = time.perf_counter() - t0

    def wake_up(self) -> None:
        """Back from a sleep without an update. After a level-2 sleep the weights are gone: only
        `sync_weights(model)` brings them back."""
        if self._asleep == FULL_SYNC_SLEEP:
            raise VLLMEngineError("sleep discarded the engine's weights; sync_weights(model) resends and wakes")
        if self._asleep:
            _free_cached_memory()
            self.llm.wake_up()
            self._asleep = 0

    # ------------------------------------------------------------------------------ weights

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Make the engine sample from `model`'s current weights; wakes it and resets its caches."""
        t0 = time.perf_counter()
        if self.lora_rank is not None:
            self._push_adapter(model)
        else:
            self._push_weights(model)
        self.llm.reset_prefix_cache()  # KV blocks of the old weights
        self.llm.llm_engine.reset_encoder_cache()  # vision embeddings of the old weights
        self.last_sync_s = time.perf_counter() - t0

    def _push_weights(self, model: torch.nn.Module) -> None:
        if self._asleep:
            _free_cached_memory()
            self.llm.wake_up(tags=["weights"])  # map the weights' memory again, without the KV cache yet
        if self._sender is None or self._sender[0] is not model:
            self._sender = (model, _weight_sender(self.llm, model))
        self._sender[1].send_weights()
        if self._asleep:
            _free_cached_memory()  # the push's staging buffer, among others
            self.llm.wake_up(tags=["kv_cache"])
            self._asleep = 0

    def _push_adapter(self, model: torch.nn.Module) -> None:
        if not is_peft_model(model):
            raise VLLMEngineError(f"lora_rank={self.lora_rank} pushes peft adapters, got a {type(model).__name__}")
        assert self._adapters is not None
        self.wake_up()
        version = self._lora.lora_int_id + 1 if self._lora is not None else 1
        path = os.path.join(self._adapters, f"v{version}")
        model.save_pretrained(path)  # type: ignore[operator]  # the adapter only: its config and weights
        request = self._lora_request_cls(f"policy-v{version}", version, path)
        self.llm.llm_engine.add_lora(request)
        if self._lora is not None:
            self.llm.llm_engine.remove_lora(self._lora.lora_int_id)
            shutil.rmtree(self._lora.lora_path, ignore_errors=True)
        self._lora = request

    def close(self) -> None:
        """Drop the engine (vLLM stops its engine-core process when the `LLM` goes) and saved adapters."""
        if self._adapters is not None:
            shutil.rmtree(self._adapters, ignore_errors=True)
        self.llm = None
