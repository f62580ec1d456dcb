"""Checkpoints: the model's weights as safetensors, the optimizer's and scheduler's state, the random
number generators, and the step, in `<output_dir>/checkpoints/step-NNNNNN/`; `latest` finds the newest.

Written to a temporary folder and renamed into place, so a run killed mid-save leaves the previous
checkpoint whole. With the RNG state restored, a resumed run samples what the straight run would
have sampled (the prompts of a step are drawn from (seed, step) alone).
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from trainer_client.policy_weights import is_peft_model

CHECKPOINTS = "checkpoints"
_KEEP = 2  # the newest checkpoints kept; older ones are deleted
COMPLETE = "COMPLETE"  # written last: every rank's state is in


def _state(model: Any) -> dict[str, torch.Tensor]:
    """What a checkpoint holds of `model`: the adapters alone for a LoRA model (its base does not change),
    else every weight."""
    if is_peft_model(model):
        from peft import get_peft_model_state_dict

        return dict(get_peft_model_state_dict(model))
    return dict(model.state_dict())


def _tensors(model: Any) -> dict[str, torch.Tensor]:
    # tied weights (embeddings shared with the head) are one tensor: safetensors stores each storage once
    seen: dict[int, str] = {}
    out = {}
    for name, tensor in _state(model).items():
        if tensor.data_ptr() in seen:
            continue
        seen[tensor.data_ptr()] = name
        out[name] = tensor.detach().contiguous().cpu()
    return out


def save_weights(model: Any, path: Path) -> None:
    save_file(_tensors(model), str(path))


def load_weights(model: Any, path: Path) -> None:
    if is_peft_model(model):
        from peft import set_peft_model_state_dict

        result: Any = set_peft_model_state_dict(model, load_file(str(path)))  # typed as a bare namedtuple
        if result.unexpected_keys:
            raise ValueError(f"{path}: adapter weights do not fit the model ({sorted(result.unexpected_keys)[:5]})")
        return
    missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    tied = {k for k in missing if k.endswith("lm_head.weight")}  # restored through the tied embedding
    if unexpected or set(missing) - tied:
        raise ValueError(f"{path}: weights do not fit the model (missing {sorted(set(missing) - tied)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]})")


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def save(output_dir: Path, step: int, model: Any, tokenizer: Any, optimizer: torch.optim.Optimizer,
         scheduler: Any, *, rank: int = 0, main: bool = True) -> Path:
    """The main process writes the checkpoint; every rank writes its random state beside it (each rank
    samples its own rollouts). Call it on every rank, wait for all, then `finish` it on the main one."""
    root = output_dir / CHECKPOINTS
    final = root / f"step-{step:06d}"
    tmp = root / f".step-{step:06d}.tmp"
    rng_dir = root / f".rng-{step:06d}"
    rng_dir.mkdir(parents=True, exist_ok=True)
    torch.save(_rng_state(), rng_dir / f"rank-{rank}.pt")
    if not main:
        return final
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_weights(model, tmp / "model.safetensors")
    tokenizer.save_pretrained(str(tmp / "tokenizer"))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step}, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def finish(output_dir: Path, step: int) -> None:
    """Once every rank has saved: move the ranks' random states into the checkpoint, drop old ones."""
    root = output_dir / CHECKPOINTS
    rng_dir, final = root / f".rng-{step:06d}", root / f"step-{step:06d}"
    for f in rng_dir.iterdir():
        f.replace(final / f.name)
    rng_dir.rmdir()
    (final / COMPLETE).touch()  # only now may `latest` offer it
    for old in sorted(root.glob("step-*"))[:-_KEEP]:
        shutil.rmtree(old, ignore_errors=True)


def latest(output_dir: Path) -> Path | None:
    """The newest whole checkpoint (a run killed while saving leaves one without its marker: skipped)."""
    found = sorted(p for p in (output_dir / CHECKPOINTS).glob("step-*") if (p / COMPLETE).exists())
    return found[-1] if found else None


def restore(path: Path, model: Any, optimizer: torch.optim.Optimizer, scheduler: Any, *, rank: int = 0) -> int:
    """Load a checkpoint into the given objects and this rank's random state; returns its step."""
    load_weights(model, path / "model.safetensors")
    state = torch.load(path / "optimizer.pt", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng_file = path / f"rank-{rank}.pt"
    if not rng_file.exists():
        raise ValueError(f"{path}: no random state for rank {rank} (was the run saved with fewer processes?)")
    rng = torch.load(rng_file, weights_only=False)
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return int(json.loads((path / "state.json").read_text())["step"])
