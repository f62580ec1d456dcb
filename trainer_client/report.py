"""What a run shows while it runs and leaves behind: a progress bar (a log line per step when the
output is not a terminal), `metrics.jsonl` (one line per step), `eval.jsonl` (one line per evaluation),
and `rewards.png` (the reward curves) at the end; `python -m trainer_client.report RUN...` compares
finished runs' held-out rewards before and after training."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from reward_service.scoring import COMPONENTS

log = logging.getLogger("trainer_client.report")


class RunLog:
    def __init__(self, output_dir: Path, steps: int, start: int) -> None:
        self.metrics_path = output_dir / "metrics.jsonl"
        self.eval_path = output_dir / "eval.jsonl"
        # a fresh run starts fresh files; a resumed one keeps what led to its checkpoint (lines written
        # after it, by a run that died later, are dropped: they are about to be written again)
        for path in (self.metrics_path, self.eval_path):
            kept = [r for r in _read(path) if r["step"] <= start] if start else []
            path.write_bytes(b"".join(orjson.dumps(r, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n" for r in kept))
        # the evaluations up to the checkpoint: a resumed run's summary still starts from step 0's
        self.earlier_evaluations = _read(self.eval_path)
        self.console = Console(stderr=True)
        self.progress: Progress | None = None
        if self.console.is_terminal:
            self.progress = Progress(TextColumn("[bold]GRPO"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                     console=self.console)
            self.task = self.progress.add_task("train", total=steps, completed=start, status="")
            self.progress.start()

    @staticmethod
    def _append(path: Path, record: dict[str, Any]) -> None:
        with path.open("ab") as f:
            f.write(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")

    def step(self, metrics: dict[str, Any]) -> None:
        self._append(self.metrics_path, metrics)
        status = (f"reward {metrics['reward_mean']:.3f}  kl {metrics.get('kl', 0.0):.4f}  "
                  f"{metrics['time_step']:.1f} s/step")
        if self.progress is not None:
            self.progress.update(self.task, completed=metrics["step"], status=status)
        else:
            log.info("step %d: %s", metrics["step"], status)

    def evaluation(self, record: dict[str, Any]) -> None:
        self._append(self.eval_path, record)
        log.info("eval at step %d: sampled reward %.3f, greedy %s", record["step"], record["sampled"]["reward_mean"],
                 f"{record['greedy']['reward_mean']:.3f}" if record.get("greedy") else "-")

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _read(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()] if path.exists() else []


def plot(output_dir: Path) -> Path:
    """rewards.png: the training reward and its components per step, and the held-out evaluations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = _read(output_dir / "metrics.jsonl")
    evals = _read(output_dir / "eval.jsonl")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    x = [m["step"] for m in steps]
    left.plot(x, [m["reward_mean"] for m in steps], label="total", color="black", linewidth=1.5)
    for name in COMPONENTS:
        values = [m.get(f"{name}_mean") for m in steps]
        if any(v is not None and not math.isnan(v) for v in values):
            left.plot(x, [math.nan if v is None else v for v in values], label=name, linewidth=0.8)
    left.set(title="training batches (sampled)", xlabel="step", ylabel="mean reward")
    left.legend(fontsize=8)
    for mode, style in (("sampled", "-o"), ("greedy", "--s")):
        points = [(e["step"], e[mode]) for e in evals if e.get(mode)]
        if points:
            right.plot([p[0] for p in points], [p[1]["reward_mean"] for p in points], style, label=f"{mode} total")
            right.plot([p[0] for p in points], [p[1]["answer_accuracy"] for p in points], style, alpha=0.5,
                       label=f"{mode} answer accuracy")
    right.set(title="held-out prompts", xlabel="step", ylabel="mean")
    right.legend(fontsize=8)
    fig.tight_layout()
    path = output_dir / "rewards.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def compare(output_dirs: list[Path]) -> list[dict[str, Any]]:
    """Per run: held-out sampled and greedy reward before (step 0, after any warm-up) and after, each
    component, answer accuracy, and the rise with its standard error paired by prompt (the same prompts
    are evaluated before and after, so their own difficulty cancels out)."""
    rows = []
    for d in output_dirs:
        evals = _read(d / "eval.jsonl")
        if len(evals) < 2:
            raise ValueError(f"{d}: {len(evals)} evaluation(s) in eval.jsonl; a before/after needs two "
                             "(is it a run's output_dir, and did the run get past its first eval_every?)")
        first, last = evals[0], evals[-1]
        row: dict[str, Any] = {"run": str(d), "steps": last["step"]}
        for mode in ("sampled", "greedy"):
            if not first.get(mode) or not last.get(mode):
                continue
            a, b = first[mode], last[mode]
            diffs = [y - x for x, y in zip(a["per_prompt_reward"], b["per_prompt_reward"], strict=True)]
            rise_sem = float(np.std(diffs, ddof=1) / math.sqrt(len(diffs))) if len(diffs) > 1 else math.nan
            row[mode] = {"before": a["reward_mean"], "after": b["reward_mean"],
                         "rise": b["reward_mean"] - a["reward_mean"], "rise_sem": rise_sem,
                         "answer_accuracy": (a["answer_accuracy"], b["answer_accuracy"]),
                         **{k: (a[f"{k}_mean"], b[f"{k}_mean"]) for k in COMPONENTS if f"{k}_mean" in a}}
        rows.append(row)
    return rows


def plot_runs(output_dirs: list[Path], path: Path) -> Path:
    """One figure of several runs' held-out rewards per evaluation (sampled solid, greedy dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, d in enumerate(output_dirs):
        evals = _read(d / "eval.jsonl")
        color = f"C{i}"
        for mode, style in (("sampled", "-o"), ("greedy", "--s")):
            points = [(e["step"], e[mode]["reward_mean"]) for e in evals if e.get(mode)]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], style, color=color, markersize=3,
                        label=f"{d.name} {mode}")
    ax.set(title="held-out mean total reward (step 0: after the warm-up)", xlabel="GRPO step", ylabel="reward")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    """`python -m trainer_client.report RUN_DIR... [--plot FILE]`: the before/after table of finished runs."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m trainer_client.report",
                                     description="Held-out rewards before and after training, per run, from "
                                                 "each output_dir's eval.jsonl.")
    parser.add_argument("runs", nargs="+", type=Path, help="output_dir of each run")
    parser.add_argument("--plot", type=Path, help="also draw every run's held-out reward curve into this PNG")
    args = parser.parse_args(argv)
    try:
        rows = compare(args.runs)
    except (ValueError, OSError) as exc:
        parser.exit(2, f"error: {exc}\n")
    for row in rows:
        for mode in ("sampled", "greedy"):
            if mode in row:
                r = row[mode]
                parts = "  ".join(f"{k} {v[0]:.3f}->{v[1]:.3f}" for k, v in r.items() if isinstance(v, tuple))
                print(f"{row['run']} [{mode}] reward {r['before']:.3f} -> {r['after']:.3f} "
                      f"(rise {r['rise']:+.3f} +- {r['rise_sem']:.3f})  {parts}")
    sampled = [row["sampled"]["rise"] for row in rows if "sampled" in row]
    if sampled:
        print(f"mean sampled rise over {len(sampled)} runs: {float(np.mean(sampled)):+.3f}")
    if args.plot:
        print(f"plot: {plot_runs(args.runs, args.plot)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
