"""The GPU smoke run: a few GRPO steps of a tiny video model with vLLM, and one JSON line of figures.

    scripts/gpu-smoke.sh                      # on a GPU node with '.[trainer,vllm,service]' installed
    python -m trainer_client.smoke --engine hf --device cpu --steps 2     # the same path on a CPU

Nothing is downloaded: a random Qwen2.5-VL-style model (vision tower and decoder) and its tokenizer
are built from a config in code and saved to a folder, as a downloaded model would be; synthetic scene
videos (coloured squares moving as the project's generator's scenes move) are written with PyAV; a
reward service is started on 127.0.0.1. Then `steps` GRPO steps run with the chosen engine, and the
line printed at the end holds: rollout tokens per second, the mean step time split (generate, score,
update, weight sync) and the share of a step spent outside generation, peak GPU memory (this process,
and the device as a whole: vLLM's engine runs in a process of its own), and whether the weights the
engine samples from changed (the log-probability of a fixed greedy completion before and after).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer_client.config import TrainConfig
from trainer_client.data import write_records
from trainer_client.data.prompts import ANSWER_FORMS, INSTRUCTIONS
from trainer_client.data.synthetic import target_completion
from trainer_client.data.synthetic_video import scene_video_records
from trainer_client.rollout import SamplingSettings
from trainer_client.scoring import Scorer, local_service
from trainer_client.tiny import QWEN_VL_TOKENS, tiny_qwen2_5_vl, vocabulary_of, word_tokenizer
from trainer_client.train import Trainer

log = logging.getLogger("trainer_client.smoke")


def build_model(folder: Path, corpus: list[str], *, hidden: int, layers: int) -> None:
    """A random tiny Qwen2.5-VL and its tokenizer (with a chat template), saved to `folder`."""
    tokenizer = word_tokenizer(vocabulary_of(corpus), special=QWEN_VL_TOKENS)
    tiny_qwen2_5_vl(tokenizer, hidden=hidden, layers=layers, heads=max(2, hidden // 32)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def fixed_logprobs(trainer: Trainer) -> list[float]:
    """The engine's log-probabilities of its greedy completion of the first held-out prompt."""
    prompt = trainer.eval_set[0][1]
    rollout = trainer.engine.generate([prompt], 1, SamplingSettings(max_new_tokens=8, greedy=True))[0][0]
    return rollout.logprobs


def gpu_memory() -> dict[str, float]:
    if not torch.cuda.is_available():
        return {}
    free, total = torch.cuda.mem_get_info()
    return {"peak_gpu_memory_trainer_gib": torch.cuda.max_memory_allocated() / 2**30,
            "gpu_memory_in_use_now_gib": (total - free) / 2**30}


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work or tempfile.mkdtemp(prefix="gpu-smoke-"))
    t0 = time.perf_counter()
    records = scene_video_records(args.prompts + 4, 0, work / "videos", size=(args.video_size, args.video_size),
                                  frames=(1, 1))  # still scenes: short graphs, so the tiny model finishes its answer
    write_records(work / "train.jsonl", records[:args.prompts])
    write_records(work / "eval.jsonl", records[args.prompts:])
    corpus = [r.question + " " + " ".join(r.options or []) + " " + target_completion(r) for r in records]
    corpus += [INSTRUCTIONS, *ANSWER_FORMS.values(), "system user assistant"]
    build_model(work / "model", corpus, hidden=args.hidden, layers=args.layers)
    config = TrainConfig(
        output_dir=str(work / "run"), seed=0, steps=args.steps, checkpoint_every=10_000, model=str(work / "model"),
        engine=args.engine, device=args.device, dtype="bfloat16" if args.device != "cpu" else "float32",
        train_data=str(work / "train.jsonl"), eval_data=str(work / "eval.jsonl"), video_root=str(work / "videos"),
        video_frames=args.frames, video_min_pixels=args.video_size**2, video_max_pixels=args.video_size**2,
        prompts_per_step=args.prompts, group_size=args.group_size, minibatch_size=args.prompts * args.group_size,
        max_new_tokens=args.max_new_tokens, beta=0.0, lr=1e-3, eval_every=0, eval_samples=1, eval_greedy=False,
        # a few supervised steps teach the random model the format with answers at chance, so rewards
        # vary within groups and the GRPO update moves the weights
        warmup_steps=args.warmup_steps, warmup_batch=8, warmup_lr=3e-3,
        vllm_gpu_memory_utilization=args.gpu_memory_utilization)
    with local_service(workers=args.service_workers) as url:
        scorer = Scorer(url, None)
        try:
            trainer = Trainer(config, scorer)
            before = fixed_logprobs(trainer)
            trainer.run()
            after = fixed_logprobs(trainer)
        finally:
            scorer.close()
    steps = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    mean = {k: float(np.mean([s[k] for s in steps])) for k in
            ("time_generate", "time_score", "time_score_exposed", "time_logprobs", "time_update", "time_weight_sync",
             "time_step", "tokens_per_s")}
    width = min(len(before), len(after))
    return {
        "engine": args.engine, "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "steps": len(steps), "rollouts_per_step": args.prompts * args.group_size, "frames": args.frames,
        "rollout_tokens_per_s": round(mean["tokens_per_s"], 1),
        "step_s": round(mean["time_step"], 3),
        "split_s": {k.removeprefix("time_"): round(v, 3) for k, v in mean.items() if k.startswith("time_")
                    and k != "time_step"},
        "share_outside_generation": round(1 - mean["time_generate"] / mean["time_step"], 3),
        **{k: round(v, 3) for k, v in gpu_memory().items()},
        "weights_changed": bool(width and np.max(np.abs(np.subtract(before[:width], after[:width]))) > 1e-6),
        "fixed_logprob_shift": round(float(np.max(np.abs(np.subtract(before[:width], after[:width])))), 6)
        if width else None,
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer_client.smoke", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=("vllm", "hf"), default="vllm")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=8, help="prompts a step")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--video-size", type=int, default=112, help="frame side in pixels (a multiple of 28)")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--warmup-steps", type=int, default=40)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.3)
    parser.add_argument("--service-workers", type=int, default=4)
    parser.add_argument("--work", help="folder for the model, videos and run (default: a new temporary one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    print(json.dumps(run(args)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
