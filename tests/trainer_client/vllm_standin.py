"""A stand-in for the parts of vLLM 0.33 that trainer_client.vllm_engine calls, for CPU tests.

Every class and method has the parameters of vLLM 0.33.0 (read in its wheel; the file beside each),
so a call with a renamed or removed argument fails here as it would there, and `API` maps each real
dotted name to its stand-in for the GPU test that compares them with `inspect.signature` of the
installed vLLM. Docs pages (docs.vllm.ai/en/v0.33.0/): api/vllm/entrypoints/llm/, api/vllm/sampling_params/,
api/vllm/outputs/, api/vllm/lora/request/, features/multimodal_inputs/, features/sleep_mode/,
training/weight_transfer/, training/weight_transfer/ipc/.

Behaviour kept from vLLM where the engine's correctness depends on it: the model's weights (read from
the checkpoint folder's model.safetensors) decide what is sampled, so a weight push changes the
log-probabilities; log-probabilities follow `logprobs_mode`; the stop token is in `token_ids` but not
in `text`; Qwen-VL's parser refuses a video without metadata; sleep level 2 discards the weights and
a push into weights still asleep, or sampling from discarded weights, fails (vLLM would write into
unmapped memory, or sample garbage); pushes come in IPC packed chunks no larger than the buffer.
What it cannot do on a CPU: CUDA IPC (a chunk carries its buffer as a tensor) and a real tokenizer
(token i is the word `w{i}`).
"""

from __future__ import annotations

import json
import os
import sys
import types
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors.torch import load_file

VOCAB, EOS = 16, 2  # the stand-in model's vocabulary; token 2 is its end of sequence
ENGINE_ARGS = frozenset({  # EngineArgs fields (vllm/engine/arg_utils.py) that reach it through LLM(**kwargs)
    "max_model_len", "enable_sleep_mode", "limit_mm_per_prompt", "enable_lora", "max_lora_rank", "max_loras",
    "logprobs_mode", "weight_transfer_config", "max_num_seqs", "max_num_batched_tokens", "enable_prefix_caching",
    "load_format",
})
LOGPROBS_MODES = ("raw_logits", "raw_logprobs", "processed_logits", "processed_logprobs")  # config/model.py
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # config/lora.py MaxLoRARanks
PROMPT_KEYS = {"prompt", "multi_modal_data", "media_io_kwargs", "mm_processor_kwargs", "multi_modal_uuids",
               "cache_salt"}  # inputs/llm.py TextPrompt
SLEEP_TAGS = ("weights", "kv_cache", "scheduling")  # entrypoints/llm.py wake_up


class VLLMValidationError(Exception):  # exceptions.py: a VLLMClientError, not a ValueError
    pass


# ------------------------------------------------------------------------------ outputs (outputs.py, logprobs.py)

@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: Any
    cumulative_logprob: float | None
    logprobs: Any
    routed_experts: Any = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    lora_request: Any = None
    sampling_mask: Any = None
    spec_decode_metrics: Any = None
    weight_versions: Any = None


class RequestOutput:
    def __init__(self, request_id: str, prompt: str | None, prompt_token_ids: list[int] | None,
                 prompt_logprobs: Any, outputs: list[CompletionOutput], finished: bool, metrics: Any = None,
                 lora_request: Any = None, encoder_prompt: str | None = None,
                 encoder_prompt_token_ids: list[int] | None = None, num_cached_tokens: int | None = None,
                 num_cache_creation_tokens: int | None = None, *, prompt_token_id_logprobs: Any = None,
                 kv_transfer_params: dict[str, Any] | None = None, ec_transfer_params: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        self.request_id, self.prompt, self.prompt_token_ids = request_id, prompt, prompt_token_ids
        self.outputs, self.finished, self.lora_request = outputs, finished, lora_request


# ------------------------------------------------------------------------------ requests

@dataclass(kw_only=True)
class SamplingParams:
    """sampling_params.py: a msgspec Struct of keyword fields; the ones a rollout engine sets, with their
    checks from `_verify_args` and `_verify_greedy_sampling`."""

    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    ignore_eos: bool = False
    max_tokens: int | None = 16
    min_tokens: int = 0
    logprobs: int | None = None
    prompt_logprobs: int | None = None
    detokenize: bool = True
    skip_special_tokens: bool = True
    spaces_between_special_tokens: bool = True
    include_stop_str_in_output: bool = False

    def __post_init__(self) -> None:
        if self.n < 1:
            raise VLLMValidationError(f"n must be at least 1, got {self.n}.")
        if not 0.0 <= self.temperature <= 2.0:
            raise VLLMValidationError(f"temperature must be in [0, 2], got {self.temperature}.")
        if not 0.0 < self.top_p <= 1.0:
            raise VLLMValidationError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.top_k < -1:
            raise VLLMValidationError(f"top_k must be -1 (disable), or at least 1, got {self.top_k}.")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise VLLMValidationError(f"max_tokens must be at least 1, got {self.max_tokens}.")
        if self.logprobs is not None and self.logprobs != -1 and self.logprobs < 0:
            raise VLLMValidationError(f"logprobs must be non-negative or -1, got {self.logprobs}.")
        if self.temperature < 1e-5 and self.n > 1:
            raise VLLMValidationError(f"n must be 1 when using greedy sampling, got {self.n}.")


@dataclass
class LoRARequest:  # lora/request.py: a msgspec Struct, positional fields in this order
    lora_name: str
    lora_int_id: int
    lora_path: str = ""
    base_model_name: str | None = None
    load_inplace: bool = False
    is_3d_lora_weight: bool = False

    def __post_init__(self) -> None:
        if self.lora_int_id < 1:
            raise ValueError(f"id must be > 0, got {self.lora_int_id}")
        assert self.lora_path, "lora_path cannot be empty"


@dataclass
class WeightTransferConfig:  # config/weight_transfer.py
    backend: str = "nccl"

    def __post_init__(self) -> None:
        if self.backend not in ("nccl", "ipc", "sparse_nccl", "sharded_rdt", "nccl_m2n", "modelexpress"):
            raise ValueError(f"Invalid weight transfer backend: {self.backend}.")


# ------------------------------------------------------------------------------ weight transfer, trainer side
# distributed/weight_transfer/base.py, factory.py, ipc_engine.py

@dataclass(frozen=True)
class ParamMeta:
    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    owners: tuple[int, ...] | None = field(default=None, kw_only=True)
    mesh_shape: tuple[int, ...] | None = field(default=None, kw_only=True)
    placements: tuple[Any, ...] | None = field(default=None, kw_only=True)


class WeightSource(ABC):
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        metadata = cls.__dict__.get("metadata")
        if metadata is not None and not isinstance(metadata, cached_property):
            raise TypeError(f"{cls.__name__}.metadata must be a functools.cached_property")

    @property
    @abstractmethod
    def metadata(self) -> list[ParamMeta]: ...

    def owned_names(self, rank: int) -> list[str]:
        return [m.name for m in self.metadata if m.owners is None or rank in m.owners]

    def implements_iter_full(self) -> bool:
        return type(self).iter_full is not WeightSource.iter_full

    def iter_full(self) -> Iterator[tuple[str, torch.Tensor]]:  # vLLM's base raises here; sources override it
        raise TypeError(f"{type(self).__name__} does not implement iter_full")


@dataclass
class IPCTrainerInitInfo:
    backend: ClassVar[str] = "ipc"
    rank: int = field(kw_only=True)
    packed: bool = False
    packed_buffer_size_bytes: int = 1 << 30


class IPCTrainerEngine:
    """The real engine exports CUDA IPC handles of a packed GPU buffer; here each chunk carries its bytes."""

    def __init__(self, init_info: IPCTrainerInitInfo, client: Any, source: WeightSource) -> None:
        self.info, self.client, self.source = init_info, client, source
        self.rounds = 0

    def send_weights(self) -> None:
        self.client.start_weight_update()
        chunk: list[tuple[str, torch.Tensor]] = []
        size = 0
        for name, tensor in self.source.iter_full():
            nbytes = tensor.numel() * tensor.element_size()
            if nbytes > self.info.packed_buffer_size_bytes:  # packed_tensor.py refuses it too
                raise ValueError(f"Tensor '{name}' has size {nbytes} bytes, which exceeds buffer_size_bytes="
                                 f"{self.info.packed_buffer_size_bytes}.")
            if chunk and size + nbytes > self.info.packed_buffer_size_bytes:
                self._send(chunk)
                chunk, size = [], 0
            chunk.append((name, tensor))
            size += nbytes
        if chunk:
            self._send(chunk)
        self.client.finish_weight_update()
        self.rounds += 1

    def _send(self, chunk: list[tuple[str, torch.Tensor]]) -> None:
        flat = [t.detach().contiguous().view(-1).view(torch.uint8) for _, t in chunk]
        self.client.update_weights({
            "names": [n for n, _ in chunk], "dtype_names": [str(t.dtype).split(".")[-1] for _, t in chunk],
            "shapes": [list(t.shape) for _, t in chunk], "ipc_handles": {"standin-gpu": torch.cat(flat).clone()},
            "tensor_sizes": [f.numel() for f in flat]})


class WeightTransferTrainerFactory:
    built: ClassVar[list[IPCTrainerEngine]] = []

    @classmethod
    def trainer_init(cls, init_info: Any, *, client: Any, source: Any = None) -> IPCTrainerEngine:
        if init_info.backend != "ipc":
            raise ValueError(f"Invalid weight transfer backend: {init_info.backend}.")
        if source is None:
            raise ValueError("IPC trainer weight transfer requires a WeightSource.")
        if not source.implements_iter_full():
            raise TypeError(f"IPC sends full tensors, but {type(source).__name__} does not implement iter_full().")
        if len(source.owned_names(init_info.rank)) != len(source.metadata):
            raise ValueError(f"rank {init_info.rank} does not own every parameter")
        engine = IPCTrainerEngine(init_info, client, source)
        if init_info.rank == 0:
            client.init_weight_transfer_engine({"packed": init_info.packed})
        cls.built.append(engine)
        return engine


# ------------------------------------------------------------------------------ the engine (entrypoints/llm.py)

class LLMEngine:  # v1/engine/llm_engine.py: the methods reached as LLM.llm_engine.*
    def __init__(self, llm: LLM) -> None:
        self.llm = llm

    def reset_encoder_cache(self) -> None:
        self.llm.calls.append(("reset_encoder_cache",))

    def add_lora(self, lora_request: LoRARequest) -> bool:
        self.llm.load_adapter(lora_request)
        self.llm.calls.append(("add_lora", lora_request.lora_int_id))
        return True

    def remove_lora(self, lora_id: int) -> bool:
        self.llm.calls.append(("remove_lora", lora_id))
        return self.llm.adapters.pop(lora_id, None) is not None


class LLM:
    """`LLM` with a sampler whose next-token logits depend on every weight it holds."""

    instances: ClassVar[list[LLM]] = []

    def __init__(self, model: str, *, runner: str = "auto", convert: str = "auto", tokenizer: str | None = None,
                 tokenizer_mode: str = "auto", skip_tokenizer_init: bool = False, trust_remote_code: bool = False,
                 tensor_parallel_size: int = 1, dtype: str = "auto", seed: int = 0,
                 gpu_memory_utilization: float = 0.92, enforce_eager: bool = False,
                 mm_processor_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        unknown = set(kwargs) - ENGINE_ARGS
        if unknown:  # LLM passes them to EngineArgs(...), which has no such field
            raise TypeError(f"EngineArgs.__init__() got unexpected keyword arguments {sorted(unknown)}")
        if kwargs.get("logprobs_mode", "raw_logprobs") not in LOGPROBS_MODES:
            raise ValueError(f"logprobs_mode must be one of {LOGPROBS_MODES}")
        if kwargs.get("enable_lora") and kwargs.get("max_lora_rank", 16) not in LORA_RANKS:
            raise ValueError(f"max_lora_rank must be one of {LORA_RANKS}")
        config = kwargs.get("weight_transfer_config")
        if config is not None and not isinstance(config, WeightTransferConfig):
            raise TypeError("weight_transfer_config must be a WeightTransferConfig")
        self.model, self.seed, self.dtype, self.engine_args = model, seed, dtype, kwargs
        self.settings = {"tokenizer": tokenizer, "gpu_memory_utilization": gpu_memory_utilization,
                         "enforce_eager": enforce_eager}
        # The engine-core process inherits the environment when it starts, that is here.
        self.insecure_serialization = os.environ.get("VLLM_ALLOW_INSECURE_SERIALIZATION") == "1"
        self.visible_devices = os.environ.get("CUDA_VISIBLE_DEVICES")  # the GPU(s) the engine core would use
        self.weights = load_file(str(Path(model) / "model.safetensors"))
        self.weights_valid = True
        self.asleep: set[str] = set()
        self.paused = False
        self.update: dict[str, torch.Tensor] | None = None  # the weights received in the open update
        self.adapters: dict[int, dict[str, torch.Tensor]] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.requests: list[dict[str, Any]] = []  # the prompt dicts generate() received
        self.sampling_params: list[SamplingParams] = []
        self.lora_requests: list[LoRARequest | None] = []
        self.eos_bias = 0.0  # tests raise or lower the chance of the stop token
        self.llm_engine = LLMEngine(self)
        LLM.instances.append(self)

    # sampling -------------------------------------------------------------------------------

    def generate(self, prompts: Any, sampling_params: Any = None, *, use_tqdm: Any = True,
                 lora_request: Any = None, priority: Any = None, tokenization_kwargs: dict[str, Any] | None = None,
                 mm_processor_kwargs: dict[str, Any] | None = None) -> list[RequestOutput]:
        if self.asleep or self.paused:
            raise RuntimeError("generate() on a sleeping engine: its requests would wait forever")
        if not self.weights_valid:
            raise RuntimeError("sampling from weights that sleep discarded and no push replaced")
        params = sampling_params or SamplingParams()
        prompts = prompts if isinstance(prompts, list | tuple) else [prompts]
        self.calls.append(("generate", len(prompts)))
        self.sampling_params.append(params)
        self.lora_requests.append(lora_request)
        adapter = self._adapter_for(lora_request)
        outputs = []
        for i, prompt in enumerate(prompts):
            text = self._parse(prompt)
            ids = [3 + zlib.crc32(word.encode()) % (VOCAB - 3) for word in text.split()]
            completions = [self._sample(text, j, params, adapter) for j in range(params.n)]
            outputs.append(RequestOutput(str(i), text, ids, None, completions, True, lora_request=lora_request))
        return outputs

    def _parse(self, prompt: Any) -> str:
        if isinstance(prompt, str):
            return prompt
        unknown = set(prompt) - PROMPT_KEYS
        if unknown:
            raise TypeError(f"not a TextPrompt key: {sorted(unknown)}")
        self.requests.append(prompt)
        videos = (prompt.get("multi_modal_data") or {}).get("video")
        if videos is not None:
            from transformers.video_utils import VideoMetadata

            items = [videos] if isinstance(videos, tuple | np.ndarray) else list(videos)
            if len(items) > self.engine_args.get("limit_mm_per_prompt", {}).get("video", 999):
                raise ValueError("At most the configured number of videos may be provided in one prompt.")
            for item in items:
                if not isinstance(item, tuple):  # multimodal/parse.py with video_needs_metadata=True
                    raise ValueError("Video metadata is required but not found in mm input. Please check your "
                                     "video input in `multi_modal_data`")
                frames, metadata = item
                VideoMetadata(**{k: v for k, v in metadata.items() if k != "do_sample_frames"})
                assert frames.ndim == 4 and frames.dtype == np.uint8
        return prompt["prompt"]

    def _sample(self, text: str, index: int, params: SamplingParams, adapter: float) -> CompletionOutput:
        rng = np.random.default_rng([self.seed, zlib.crc32(text.encode()), index if params.temperature else 0])
        shift = self._checksum() + adapter
        greedy = params.temperature < 1e-5
        tokens: list[int] = []
        logprobs: list[dict[int, Logprob]] = []
        for _ in range(params.max_tokens or 16):
            logits = rng.normal(size=VOCAB) + 0.5 * np.sin(np.arange(VOCAB) * shift)
            logits[EOS] += self.eos_bias
            processed = logits if greedy else logits / params.temperature
            token = int(np.argmax(processed)) if greedy else int(rng.choice(VOCAB, p=_softmax(processed)))
            kept = processed if self.engine_args.get("logprobs_mode", "raw_logprobs").startswith("processed") \
                else logits
            logprobs.append({token: Logprob(float(np.log(_softmax(kept)[token])), 1, f"w{token}")})
            tokens.append(token)
            if token == EOS and not params.ignore_eos:
                break
        shown = [t for t in tokens if t != EOS] if params.skip_special_tokens else tokens
        return CompletionOutput(index, " ".join(f"w{t}" for t in shown), tokens,
                                sum(next(iter(p.values())).logprob for p in logprobs), logprobs,
                                finish_reason="stop" if tokens[-1] == EOS else "length")

    def _checksum(self) -> float:
        return sum(float(t.double().sum()) for t in self.weights.values()) % 7.0 + 0.1

    # LoRA ---------------------------------------------------------------------------------------

    def load_adapter(self, request: LoRARequest) -> None:
        if not self.engine_args.get("enable_lora"):
            raise ValueError("LoRA is not enabled: LLM(enable_lora=True)")
        config = json.loads((Path(request.lora_path) / "adapter_config.json").read_text())
        if config["r"] > self.engine_args.get("max_lora_rank", 16):
            raise ValueError(f"LoRA rank {config['r']} is greater than max_lora_rank")
        self.adapters[request.lora_int_id] = load_file(str(Path(request.lora_path) / "adapter_model.safetensors"))

    def _adapter_for(self, request: LoRARequest | None) -> float:
        if request is None:
            return 0.0
        if request.lora_int_id not in self.adapters:
            self.load_adapter(request)  # vLLM loads an unknown id from its path on first use
        return sum(float(t.double().sum()) for t in self.adapters[request.lora_int_id].values())

    # sleep mode ---------------------------------------------------------------------------------

    def sleep(self, level: int = 1, mode: str = "abort") -> None:
        if not self.engine_args.get("enable_sleep_mode"):
            raise RuntimeError("sleep mode is not enabled: LLM(enable_sleep_mode=True)")
        self.calls.append(("sleep", level))
        self.paused = True
        if level >= 1:
            self.asleep = {"weights", "kv_cache"}
            self.calls.append(("caches reset by sleep",))
        if level >= 2:
            self.weights_valid = False

    def wake_up(self, tags: list[str] | None = None) -> bool:
        if tags is not None and not set(tags) <= set(SLEEP_TAGS):
            raise ValueError(f"tags must be in {SLEEP_TAGS}")
        self.calls.append(("wake_up", None if tags is None else tuple(tags)))
        self.asleep -= set(SLEEP_TAGS if tags is None else tags)
        if not self.asleep:
            self.paused = False
        return not self.asleep

    def reset_prefix_cache(self, reset_running_requests: bool = False, reset_connector: bool = False) -> bool:
        self.calls.append(("reset_prefix_cache",))
        return True

    # weight transfer (entrypoints/rl/offline.py; the worker side in v1/worker/gpu_worker.py) ------------

    def init_weight_transfer_engine(self, request: Any) -> None:
        self._transfer_configured()
        self.calls.append(("init_weight_transfer_engine", dict(_field(request, "init_info"))))

    def start_weight_update(self) -> None:
        self._transfer_configured()
        if self.update is not None:
            raise RuntimeError("start_weight_update called while a weight update is already active.")
        self.calls.append(("start_weight_update",))
        self.update = {}

    def update_weights(self, request: Any) -> None:
        info = _field(request, "update_info")
        if self.update is None:
            raise RuntimeError("start_weight_update must be called before update_weights.")
        if "weights" in self.asleep:
            raise RuntimeError("weights pushed into memory that sleep unmapped: wake_up(tags=['weights']) first")
        if not self.insecure_serialization:
            raise TypeError("IPC handles are not serializable without VLLM_ALLOW_INSECURE_SERIALIZATION=1")
        buffer, offset = info["ipc_handles"]["standin-gpu"], 0
        for name, dtype, shape, size in zip(info["names"], info["dtype_names"], info["shapes"], info["tensor_sizes"],
                                            strict=True):
            if name not in self.weights:  # the model's load_weights knows only its checkpoint names
                raise ValueError(f"There is no module or parameter named '{name}' in the model")
            tensor = buffer[offset:offset + size].view(getattr(torch, dtype)).view(shape)
            if tuple(tensor.shape) != tuple(self.weights[name].shape):
                raise ValueError(f"{name}: shape {tuple(tensor.shape)}, the model's is {tuple(self.weights[name].shape)}")
            self.update[name] = tensor.clone()
            offset += size
        self.calls.append(("update_weights", len(info["names"])))

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        if self.update is None:
            raise RuntimeError("finish_weight_update called without a matching start_weight_update.")
        self.weights.update(self.update)
        if set(self.update) == set(self.weights):
            self.weights_valid = True  # every weight replaced: what sleep discarded is whole again
        self.update = None
        self.calls.append(("finish_weight_update",))

    def _transfer_configured(self) -> None:
        if self.engine_args.get("weight_transfer_config") is None:
            raise RuntimeError("Weight transfer not configured. Please set weight_transfer_config to enable "
                               "weight transfer.")


def _field(request: Any, name: str) -> Any:
    return request[name] if isinstance(request, dict) else getattr(request, name)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


# ------------------------------------------------------------------------------ installing it

API = {  # real dotted name -> stand-in, for the signature test on a GPU node
    "vllm.LLM.__init__": LLM.__init__, "vllm.LLM.generate": LLM.generate, "vllm.LLM.sleep": LLM.sleep,
    "vllm.LLM.wake_up": LLM.wake_up, "vllm.LLM.reset_prefix_cache": LLM.reset_prefix_cache,
    "vllm.LLM.init_weight_transfer_engine": LLM.init_weight_transfer_engine,
    "vllm.LLM.start_weight_update": LLM.start_weight_update, "vllm.LLM.update_weights": LLM.update_weights,
    "vllm.LLM.finish_weight_update": LLM.finish_weight_update,
    "vllm.v1.engine.llm_engine.LLMEngine.reset_encoder_cache": LLMEngine.reset_encoder_cache,
    "vllm.v1.engine.llm_engine.LLMEngine.add_lora": LLMEngine.add_lora,
    "vllm.v1.engine.llm_engine.LLMEngine.remove_lora": LLMEngine.remove_lora,
    "vllm.SamplingParams": SamplingParams, "vllm.RequestOutput.__init__": RequestOutput.__init__,
    "vllm.CompletionOutput": CompletionOutput, "vllm.logprobs.Logprob": Logprob,
    "vllm.lora.request.LoRARequest": LoRARequest, "vllm.config.WeightTransferConfig": WeightTransferConfig,
    "vllm.distributed.weight_transfer.ParamMeta": ParamMeta,
    "vllm.distributed.weight_transfer.WeightSource.owned_names": WeightSource.owned_names,
    "vllm.distributed.weight_transfer.WeightTransferTrainerFactory.trainer_init":
        WeightTransferTrainerFactory.trainer_init,
    "vllm.distributed.weight_transfer.ipc_engine.IPCTrainerInitInfo": IPCTrainerInitInfo,
}

MODULES = {
    "vllm": {"LLM": LLM, "SamplingParams": SamplingParams, "RequestOutput": RequestOutput,
             "CompletionOutput": CompletionOutput},
    "vllm.logprobs": {"Logprob": Logprob},
    "vllm.lora": {},
    "vllm.lora.request": {"LoRARequest": LoRARequest},
    "vllm.config": {"WeightTransferConfig": WeightTransferConfig},
    "vllm.distributed": {},
    "vllm.distributed.weight_transfer": {"WeightSource": WeightSource, "ParamMeta": ParamMeta,
                                         "WeightTransferTrainerFactory": WeightTransferTrainerFactory},
    "vllm.distributed.weight_transfer.ipc_engine": {"IPCTrainerInitInfo": IPCTrainerInitInfo},
}


def install(monkeypatch: Any) -> None:
    """Put the stand-in in `sys.modules` as `vllm` for one test (monkeypatch undoes it)."""
    for name, attributes in MODULES.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(LLM, "instances", [])
    monkeypatch.setattr(WeightTransferTrainerFactory, "built", [])

