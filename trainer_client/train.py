"""GRPO against the reward service: `grpo-train --config run.yaml [--field value ...]`.

One step, as the loop below reads:
 1. draw `prompts_per_step` prompts (from the seed and the step alone, so a resumed run draws the same);
 2. the engine samples `group_size` completions of each (G rollouts of one prompt form a group);
 3. the rollouts are sent to the reward service, and while it scores them the training model computes
    the old log-probabilities of the sampled tokens (and the reference model its own, when beta > 0);
 4. group advantages (trainer_client.grpo; items the service could not score are left out);
 5. `updates_per_batch` passes of AdamW over minibatches of the rollouts, on the clipped surrogate plus
    beta times the KL to the reference, with gradient clipping and the learning-rate schedule;
 6. metrics to metrics.jsonl and the progress bar; held-out evaluation every `eval_every` steps;
    a checkpoint every `checkpoint_every` steps, on Ctrl-C, and at the end; rewards.png at the end.

Several processes: `accelerate launch --num_processes N -m trainer_client.train --config run.yaml`. Each
rank runs its own engine, draws its own prompts, scores its own groups (a group never spans ranks, so
its advantages are computed where it lives) and computes its loss; Accelerate averages the gradients,
so every rank takes the same optimizer step. After each step the ranks compare a checksum of their
weights, and a run whose ranks disagree stops. Rank 0 evaluates, logs and writes checkpoints (each rank
keeps its own random state in them).

Run the CPU proof: `grpo-train --config examples/cpu-synthetic.yaml` (README, "Train with GRPO").
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer_client import checkpoint
from trainer_client.batches import Batch, batched_logprobs, forward_logprobs
from trainer_client.client import RewardServiceError
from trainer_client.config import ConfigError, TrainConfig, load_config
from trainer_client.data import DatasetError, Record, load_records
from trainer_client.data.prompts import render_prompt
from trainer_client.data.synthetic import split, target_completion
from trainer_client.grpo import aggregate, group_advantages, token_losses
from trainer_client.models import Policy, is_lora, load_policy, pick_device, reference_copy
from trainer_client.prompting import PromptBuilder
from trainer_client.report import COMPONENTS, RunLog, plot
from trainer_client.rollout import (
    EnginePrompt,
    HFEngine,
    Rollout,
    RolloutEngine,
    SamplingSettings,
    check_video_tokens,
    model_inputs,
)
from trainer_client.scoring import Scorer, local_service
from trainer_client.video import VideoError
from trainer_client.warmup import supervised_warmup

log = logging.getLogger("trainer_client.train")


# ------------------------------------------------------------------------------------------ the run


class Trainer:
    def __init__(self, config: TrainConfig, scorer: Scorer) -> None:
        from accelerate import Accelerator

        self.config = config
        self.scorer = scorer
        self.output_dir = Path(config.output_dir)
        self.accelerator = Accelerator(cpu=pick_device(config.device).type == "cpu")
        self.rank, self.world = self.accelerator.process_index, self.accelerator.num_processes
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        self.train_records, self.eval_records = self._records()
        self.train_prompts = [render_prompt(r, instructions=config.prompt_instructions) for r in self.train_records]
        self.eval_prompts = [render_prompt(r, instructions=config.prompt_instructions) for r in self.eval_records]
        resume_from = checkpoint.latest(self.output_dir) if config.resume else None
        if config.resume and resume_from is None:
            log.warning("resume: no checkpoint in %s; starting from scratch", self.output_dir)
        corpus = self.train_prompts + self.eval_prompts + self._targets()
        self.policy: Policy = load_policy(config.model_copy(update={"device": str(self.accelerator.device)}), corpus,
                                          resume_from / "tokenizer" if resume_from else None)
        model = self.policy.model
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr,
                                      weight_decay=config.weight_decay)
        # stepped by us once a training step (Accelerate's wrapper would step it once per process)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._lr_factor)
        self.start = 0
        if resume_from is not None:
            self.start = checkpoint.restore(resume_from, model, optimizer, self.scheduler, rank=self.rank)
            log.info("resumed from %s (step %d)", resume_from, self.start)
        self.prompts = PromptBuilder(config, self.policy.tokenizer)
        if resume_from is None and config.warmup_steps:
            warm = [(r, p) for r in self.train_records if (p := self.prompts.build(r)) is not None]
            supervised_warmup(model, self.policy.tokenizer, [r for r, _ in warm], [p for _, p in warm],
                              steps=config.warmup_steps, batch=config.warmup_batch, lr=config.warmup_lr,
                              position_noise=config.warmup_position_noise, answer_noise=config.warmup_answer_noise,
                              seed=config.seed, should_stop=STOP.is_set)
        self.eval_set = [(r, p) for r in self.eval_records if (p := self.prompts.build(r)) is not None]
        self.reference = self._reference(model, resume_from is not None)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self._same_start()
        if resume_from is None:  # (a resumed run has each rank's stream back from its checkpoint)
            torch.manual_seed(config.seed + self.rank)  # each rank samples its own stream; rank 0 the seed's
        self.engine = self._engine()
        self.sampling = SamplingSettings(config.temperature, config.top_p, config.max_new_tokens)
        self.micro = config.micro_batch_size or config.minibatch_size
        self.video_token_id = self.policy.video_token_id

    def _engine(self) -> RolloutEngine:
        c = self.config
        if c.engine == "hf":
            return HFEngine(self.policy.model, self.policy.tokenizer, batch_size=c.prompts_per_step * c.group_size)
        from trainer_client.vllm_engine import VLLMEngine

        engine = VLLMEngine(c.model, dtype=c.dtype, gpu_memory_utilization=c.vllm_gpu_memory_utilization,
                            max_model_len=c.vllm_max_model_len, enable_sleep_mode=c.vllm_sleep_mode, seed=c.seed,
                            lora_rank=c.lora_r if c.vllm_push_adapters else None,
                            gpu=self.accelerator.local_process_index if self.policy.device.type == "cuda" else None)
        if self.start > 0 or c.warmup_steps:  # the trained weights differ from the saved model's
            engine.sync_weights(self.policy.model)
        return engine

    def _reference(self, model: Any, resumed: bool) -> Any:
        """The KL's frozen reference: none at beta 0; with LoRA the same model with its adapters off;
        else a copy, saved once so a resumed run measures KL to the same policy."""
        if self.config.beta == 0 or is_lora(model):
            return None
        reference = reference_copy(model)
        path = self.output_dir / "reference.safetensors"
        if resumed and path.exists():
            checkpoint.load_weights(reference, path)
        elif self.accelerator.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            checkpoint.save_weights(reference, path)
        return reference

    def _same_start(self) -> None:
        """Every rank starts from rank 0's weights (the warm-up is seeded alike, but a rank must not rely
        on bit-equal arithmetic elsewhere)."""
        if self.world > 1:
            from accelerate.utils import broadcast

            for tensor in self.policy.model.state_dict().values():
                tensor.copy_(broadcast(tensor.contiguous()))
            if self.reference is not None:
                for tensor in self.reference.state_dict().values():
                    tensor.copy_(broadcast(tensor.contiguous()))

    # -------------------------------------------------------------------------------- set-up

    def _records(self) -> tuple[list[Record], list[Record]]:
        """Training and held-out records: the held-out file when given, else synthetic prompts of another
        seed, or `eval_size` records split off the training file (seeded) and kept out of training."""
        c = self.config
        if c.train_data == "synthetic":
            train, held_out = split(c.synthetic_train, c.eval_size, c.seed, task_types=c.synthetic_task_types,
                                    objects=c.synthetic_objects, frames=c.synthetic_frames)
        else:
            train = load_records(c.train_data, skip_bad=c.skip_bad_lines).records
            held_out = []
            if not c.eval_data:
                if len(train) <= c.eval_size:
                    raise DatasetError(f"{c.train_data}: {len(train)} records leave none for training once "
                                       f"{c.eval_size} are held out; give eval_data or a smaller eval_size")
                order = np.random.default_rng([c.seed, 11]).permutation(len(train))
                held_out = [train[i] for i in order[:c.eval_size]]
                train = [train[i] for i in sorted(order[c.eval_size:])]
        if c.eval_data:
            held_out = load_records(c.eval_data, skip_bad=c.skip_bad_lines).records
        return train, held_out

    def _targets(self) -> list[str]:
        """Warm-up targets' words belong in a tiny model's vocabulary (graph text, tags, answers)."""
        if self.config.train_data != "synthetic":
            return []
        return [target_completion(r) + " " for r in self.train_records + self.eval_records]

    def _lr_factor(self, step: int) -> float:
        c = self.config
        if step < c.lr_warmup_steps:
            return (step + 1) / c.lr_warmup_steps
        done = (step - c.lr_warmup_steps) / max(1, c.steps - c.lr_warmup_steps)
        if c.lr_schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(1.0, done)))
        if c.lr_schedule == "linear":
            return max(0.0, 1 - done)
        return 1.0

    # -------------------------------------------------------------------------------- one step

    def _items(self, records: Sequence[Record], groups: Sequence[Sequence[Rollout]]) -> list[dict[str, Any]]:
        return [{"id": f"{p}-{g}", "group_id": str(p), "completion": r.text, "reference": record.reference,
                 "num_tokens": r.num_tokens}
                for p, (record, group) in enumerate(zip(records, groups, strict=True)) for g, r in enumerate(group)]

    def _draw(self, step: int) -> tuple[list[Record], list[EnginePrompt]]:
        """This rank's prompts of the step, drawn from (seed, step, rank) alone; a record whose video is
        skipped gives way to the next draw."""
        c = self.config
        rng = np.random.default_rng([c.seed, step, self.rank])
        records: list[Record] = []
        prompts: list[EnginePrompt] = []
        for _ in range(100 * c.prompts_per_step):
            record = self.train_records[int(rng.integers(len(self.train_records)))]
            prompt = self.prompts.build(record)
            if prompt is not None:
                records.append(record)
                prompts.append(prompt)
                if len(prompts) == c.prompts_per_step:
                    return records, prompts
        raise TrainerError(f"too few readable videos: {self.prompts.videos_skipped} skipped so far")

    def _reference_logprobs(self, batch: Batch) -> torch.Tensor | None:
        c = self.config
        if c.beta == 0:
            return None
        if self.reference is not None:
            return batched_logprobs(self.reference, batch, c.temperature, self.micro)
        with self.policy.model.disable_adapter():  # LoRA: the base model is the reference
            return batched_logprobs(self.policy.model, batch, c.temperature, self.micro)

    def _one_step_update(self, rows: int) -> bool:
        """One optimizer step over the whole batch (one pass, one minibatch): the update's own forward
        runs on the weights that sampled, so its log-probabilities, detached, are the old ones and their
        separate forward is saved (as TRL does with one iteration)."""
        return self.config.updates_per_batch == 1 and self.config.minibatch_size >= rows

    def step(self, step: int) -> dict[str, Any]:
        c = self.config
        t0 = time.perf_counter()
        records, prompts = self._draw(step)
        t_drawn = time.perf_counter()  # prompts built (a video decoded, unless cached)
        groups = self.engine.generate(prompts, c.group_size, self.sampling)
        self.engine.sleep()  # a colocated engine frees the GPU for the update; sync_weights wakes it
        t_generated = time.perf_counter()
        items = self._items(records, groups)
        pending = self.scorer.submit(items)  # scored while the log-probabilities below are computed
        scored_at: list[float] = []
        pending.add_done_callback(lambda _: scored_at.append(time.perf_counter()))

        rollouts = [r for g in groups for r in g]
        videos = [model_inputs(p)[1] for p in prompts]  # a prompt's tensors, shared by its G rows
        check_video_tokens(rollouts, videos, c.group_size, self.video_token_id)
        batch = Batch.of(rollouts, self.policy.tokenizer.pad_token_id, self.policy.device,
                         inputs=[videos[i // c.group_size] for i in range(len(rollouts))],
                         text_positions=not self.policy.is_video_model)
        old_logp = (None if self._one_step_update(len(rollouts))
                    else batched_logprobs(self.policy.model, batch, c.temperature, self.micro))
        ref_logp = self._reference_logprobs(batch)
        t_logprobs = time.perf_counter()
        results = self.scorer.result(items, pending)
        t_scored = time.perf_counter()

        rewards = torch.tensor([math.nan if r.reward is None else r.reward for r in results], dtype=torch.float64)
        group_ids = torch.arange(len(groups)).repeat_interleave(c.group_size)
        adv = group_advantages(rewards, group_ids, c.advantages)
        lr = self.scheduler.get_last_lr()[0]  # the rate this step's update uses
        stats, old_logp = self._update(batch, old_logp, ref_logp, adv.values.float().to(self.policy.device),
                                       adv.scored.to(self.policy.device))
        t_updated = time.perf_counter()
        self.engine.sync_weights(self.policy.model)
        t_synced = time.perf_counter()

        engine_logp = torch.zeros_like(old_logp)
        for row, r in enumerate(rollouts):
            engine_logp[row, :r.num_tokens] = torch.tensor(r.logprobs, device=engine_logp.device)
        generated = sum(r.num_tokens for r in rollouts)
        local = {
            "components": torch.tensor([[math.nan if r.mask or r.components[k] is None else r.components[k]
                                         for k in COMPONENTS] for r in results], dtype=torch.float64),
            "rewards": rewards,
        }
        every = {k: self.accelerator.gather(v.to(self.policy.device)).cpu() for k, v in local.items()}
        scored = every["rewards"][~torch.isnan(every["rewards"])]
        metrics: dict[str, Any] = {
            "step": step + 1,
            "reward_mean": float(scored.mean()) if len(scored) else math.nan,
            "reward_std": float(scored.std(unbiased=False)) if len(scored) else math.nan,
            **{f"{name}_mean": float(torch.nanmean(every["components"][:, i])) for i, name in enumerate(COMPONENTS)},
            "flat_group_fraction": self._mean_over_ranks(adv.flat_groups / len(groups)),
            "masked": int(torch.isnan(every["rewards"]).sum()),
            **{k: self._mean_over_ranks(v) for k, v in stats.items()},
            "completion_tokens_mean": generated / len(rollouts),
            "videos_skipped": self.prompts.videos_skipped,
            "truncated_fraction": sum(r.truncated for r in rollouts) / len(rollouts),
            "engine_logprob_mismatch": float((engine_logp - old_logp).abs()[batch.completion].mean()),
            "tokens_per_s": generated / (t_generated - t_drawn),
            "time_prompts": t_drawn - t0,
            "time_generate": t_generated - t_drawn,
            "time_score": (scored_at[0] if scored_at else t_scored) - t_generated,  # the service's answer came
            "time_score_exposed": t_scored - t_logprobs,  # what the overlap did not hide
            "time_logprobs": t_logprobs - t_generated,
            "time_update": t_updated - t_scored,
            "time_weight_sync": t_synced - t_updated,
            "time_step": t_synced - t0,
            "lr": lr,
        }
        if self.world > 1:
            metrics["weights_checksum"] = self._agreed_checksum(step + 1)
        return metrics

    def _mean_over_ranks(self, value: float) -> float:
        if self.world == 1:
            return float(value)
        return float(self.accelerator.reduce(torch.tensor([value], device=self.policy.device), "mean")[0])

    def _agreed_checksum(self, step: int) -> float:
        """A checksum of the weights, which every rank must share after the step: else stop."""
        total = torch.zeros(1, dtype=torch.float64, device=self.policy.device)
        for p in self.policy.model.parameters():
            if p.requires_grad:  # what the update changes (under LoRA the frozen base is rank 0's anyway)
                total += p.detach().sum(dtype=torch.float64) + torch.linalg.vector_norm(p.detach(), dtype=torch.float64)
        every = self.accelerator.gather(total).cpu()
        if not torch.allclose(every, every[0].expand_as(every), rtol=1e-9, atol=0):
            raise RuntimeError(f"ranks disagree on the weights after step {step}: {every.tolist()}")
        return float(every[0])

    def _update(self, batch: Batch, old_logp: torch.Tensor | None, ref_logp: torch.Tensor | None,
                advantages: torch.Tensor, scored: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
        """`updates_per_batch` passes over shuffled minibatches of `minibatch_size` rollouts, one optimizer
        step each, with gradients accumulated over micro-batches of `micro_batch_size`; returns the step's
        statistics and the old log-probabilities (`old_logp` None: one step on the whole batch, whose
        forward gives them). The loss is
        normalised over the minibatch on every rank together (its tokens or sequences summed across
        ranks, times the world size since Accelerate averages the ranks' gradients), so a token weighs
        the same wherever it was sampled. An unscored rollout stays in its minibatch with no weight (every
        rank takes the same number of optimizer steps), so it moves nothing."""
        c = self.config
        sums = {"loss": 0.0, "kl": 0.0, "clip_fraction": 0.0, "entropy": 0.0, "grad_norm": 0.0, "tokens": 0.0}
        steps = 0
        rows = len(batch.tokens)
        seen = old_logp if old_logp is not None else torch.zeros(batch.completion.shape, device=batch.tokens.device)
        for _ in range(c.updates_per_batch):
            order = torch.randperm(rows).to(batch.tokens.device)
            for start in range(0, rows, c.minibatch_size):
                index = order[start:start + c.minibatch_size]
                masks = batch.completion[index] & scored[index].unsqueeze(-1)
                counts = self._sum_over_ranks(torch.stack([masks.sum(), scored[index].sum()]).float())
                tokens, sequences = max(float(counts[0]), 1.0), max(int(counts[1]), 1)
                self.optimizer.zero_grad(set_to_none=True)
                for first in range(0, len(index), self.micro):
                    part = index[first:first + self.micro]
                    last = first + self.micro >= len(index)
                    with contextlib.nullcontext() if last else self.accelerator.no_sync(self.model):
                        micro, logp = self._micro_step(
                            batch.rows(part), masks[first:first + self.micro],
                            old_logp[part] if old_logp is not None else None,
                            ref_logp[part] if ref_logp is not None else None, advantages[part], tokens, sequences)
                    if old_logp is None:
                        seen[part] = logp
                    for k, v in micro.items():
                        sums[k] += v
                sums["grad_norm"] += float(self.accelerator.clip_grad_norm_(self.model.parameters(), c.max_grad_norm))
                self.optimizer.step()
                steps += 1
        self.scheduler.step()
        n = max(sums.pop("tokens"), 1.0)
        return ({"loss": sums["loss"] / max(steps, 1), "grad_norm": sums["grad_norm"] / max(steps, 1),
                 **{k: sums[k] / n for k in ("kl", "clip_fraction", "entropy")}},  # per scored token, this rank
                seen)

    def _micro_step(self, part: Batch, mask: torch.Tensor, old_logp: torch.Tensor | None,
                    ref_logp: torch.Tensor | None, advantages: torch.Tensor, tokens: float, sequences: int,
                    ) -> tuple[dict[str, float], torch.Tensor]:
        """Forward and backward of one micro-batch; returns sums for the step's statistics and the
        log-probabilities it computed (detached). `old_logp` None: those are the old ones."""
        c = self.config
        logp, ent = forward_logprobs(self.model, part, c.temperature, with_entropy=True)
        losses = token_losses(logp, old_logp if old_logp is not None else logp.detach(), advantages,
                              clip_low=c.clip_low, clip_high=c.clip_high, beta=c.beta, ref_logp=ref_logp)
        loss = aggregate(losses.loss, mask, c.loss_aggregation, batch_tokens=tokens, batch_sequences=sequences,
                         max_tokens=c.max_new_tokens) * self.world
        self.accelerator.backward(loss)
        with torch.no_grad():
            return ({"loss": float(loss), "tokens": float(mask.sum()),
                     "kl": float((losses.kl * mask).sum()) if losses.kl is not None else 0.0,
                     "clip_fraction": float((losses.clipped & mask).sum()),
                     "entropy": float((ent * mask).sum()) if ent is not None else 0.0}, logp.detach())

    def _sum_over_ranks(self, values: torch.Tensor) -> torch.Tensor:
        return values if self.world == 1 else self.accelerator.reduce(values.to(self.policy.device), "sum")

    # -------------------------------------------------------------------------------- evaluation

    def evaluate(self, step: int) -> dict[str, Any]:
        """Held-out prompts, sampled as training samples (`eval_samples` each) and, if asked, greedy (on
        rank 0; the others wait)."""
        c = self.config
        records = [r for r, _ in self.eval_set]
        prompts = [p for _, p in self.eval_set]
        record: dict[str, Any] = {"step": step}
        modes = [("sampled", SamplingSettings(c.temperature, c.top_p, c.max_new_tokens), c.eval_samples)]
        if c.eval_greedy:
            modes.append(("greedy", SamplingSettings(max_new_tokens=c.max_new_tokens, greedy=True), 1))
        for name, settings, n in modes:
            groups = self.engine.generate(prompts, n, settings)
            results = self.scorer.score(self._items(records, groups))
            scored = [r for r in results if not r.mask]
            # each prompt's mean over its samples: the unit the noise of this figure is measured in
            per_prompt = [_mean(r.reward for r in results[p * n:(p + 1) * n] if not r.mask)
                          for p in range(len(prompts))]
            record[name] = {
                "reward_mean": _mean(r.reward for r in scored),
                "reward_sem": float(np.std(per_prompt, ddof=1) / math.sqrt(len(per_prompt))) if len(prompts) > 1
                else math.nan,
                "per_prompt_reward": per_prompt,
                **{f"{k}_mean": _mean(r.components[k] for r in scored) for k in COMPONENTS},
                "answer_accuracy": _mean(float((r.components["answer"] or 0.0) >= 0.5) for r in scored),
                "masked": len(results) - len(scored), "prompts": len(prompts), "samples_per_prompt": n,
            }
        return record

    # -------------------------------------------------------------------------------- the loop

    def save(self, step: int) -> Path | None:
        path = checkpoint.save(self.output_dir, step, self.policy.model, self.policy.tokenizer, self.optimizer,
                               self.scheduler, rank=self.rank, main=self.accelerator.is_main_process)
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            checkpoint.finish(self.output_dir, step)
        self.accelerator.wait_for_everyone()
        return path

    def _evaluate(self, step: int, report: RunLog | None, evaluations: list[dict[str, Any]]) -> None:
        if self.accelerator.is_main_process:
            evaluations.append(self.evaluate(step))
            if report is not None:
                report.evaluation(evaluations[-1])
        self.accelerator.wait_for_everyone()

    def _should_stop(self) -> bool:
        """Whether a stop was asked for (Ctrl-C or SIGTERM under `grpo-train`), agreed by every rank, so
        they all leave the loop after the same step."""
        asked = STOP.is_set()
        if self.world > 1:
            asked = bool(self._sum_over_ranks(torch.tensor([float(asked)]))[0] > 0)
        return asked

    def run(self) -> dict[str, Any]:
        c = self.config
        main = self.accelerator.is_main_process
        if main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            c.write(self.output_dir)
        report = RunLog(self.output_dir, c.steps, self.start) if main else None
        evaluations: list[dict[str, Any]] = list(report.earlier_evaluations) if report is not None else []
        step = self.start
        try:
            if self.start == 0:
                self._evaluate(0, report, evaluations)
            while step < c.steps:
                metrics = self.step(step)
                step += 1
                if report is not None:
                    report.step(metrics)
                if self._should_stop():  # between steps: the checkpoint holds whole steps only
                    path = self.save(step)
                    log.warning("stopped after step %d: checkpoint saved to %s; continue with --resume true",
                                step, path)
                    raise KeyboardInterrupt
                if c.eval_every and step % c.eval_every == 0 and step < c.steps:
                    self._evaluate(step, report, evaluations)
                if step % c.checkpoint_every == 0:
                    self.save(step)
            if step % c.checkpoint_every:  # saved before the evaluation draws random numbers: a resumed run
                self.save(step)  # continues from exactly where the training steps left off
            self._evaluate(step, report, evaluations)
        finally:
            if report is not None:
                report.close()
            close = getattr(self.engine, "close", None)
            if close is not None:
                close()
        summary: dict[str, Any] = {"steps": step}
        if report is not None:
            summary.update(first_eval=evaluations[0], last_eval=evaluations[-1], plot=str(plot(self.output_dir)))
        return summary


def _mean(values: Any) -> float:
    kept = [float(v) for v in values if v is not None]
    return float(np.mean(kept)) if kept else math.nan


STOP = threading.Event()  # set by grpo-train's signal handler; the loop stops after the step in progress


def run(config: TrainConfig) -> dict[str, Any]:
    """Train with `config`; starts a local reward service first when `spawn_service` is set."""
    if config.spawn_service and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise TrainerError("spawn_service starts a service per process: with several processes, start one "
                           "reward service and give its service_url")
    def with_service(url: str | None) -> dict[str, Any]:
        scorer = Scorer(url, config.service_api_key, config.reward_config)
        try:
            return Trainer(config, scorer).run()
        finally:
            scorer.close()

    if config.spawn_service:
        with local_service() as url:
            return with_service(url)
    return with_service(config.service_url)


class TrainerError(RuntimeError):
    """A run that cannot go on; the message says why."""


def _stop_after_step(signum: int, frame: Any) -> None:
    if STOP.is_set():  # a second Ctrl-C: stop now, without a checkpoint of the step in progress
        raise KeyboardInterrupt
    STOP.set()
    log.warning("stopping after the step in progress (Ctrl-C again to stop at once, without saving it)")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request would bury the step lines
    signal.signal(signal.SIGINT, _stop_after_step)
    signal.signal(signal.SIGTERM, _stop_after_step)
    try:
        config = load_config(argv)
    except ConfigError as exc:
        print(f"grpo-train: {exc}", file=sys.stderr)
        return 2
    try:
        summary = run(config)
    except KeyboardInterrupt:
        return 130
    except (DatasetError, VideoError, RewardServiceError, ValueError, RuntimeError, ImportError) as exc:
        print(f"grpo-train: {type(exc).__name__}: {exc}", file=sys.stderr)  # ImportError: vLLM not installed
        return 1
    if "last_eval" not in summary:  # not the main process
        return 0
    first, last = summary["first_eval"], summary["last_eval"]
    print(f"held-out sampled reward: {first['sampled']['reward_mean']:.3f} at step {first['step']} -> "
          f"{last['sampled']['reward_mean']:.3f} at step {last['step']}; plot: {summary['plot']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
