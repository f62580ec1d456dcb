"""Completions of a chosen quality for a task: exact, noisy, wrong, malformed or adversarial."""

from __future__ import annotations

import numpy as np

from reward_service.synth.common import _pick
from reward_service.synth.faults import _adversarial, _malformed, applicable_kinds
from reward_service.synth.render import (
    _exact_graph_text,
    _format_answer,
    _noisy_graph_text,
    _noisy_value,
    _render,
    _wrong_value,
)
from reward_service.synth.tasks import Task

# "wrong" is an honest, well-formed completion whose answer earns 0: the yardstick adversarial kinds
# must not beat, and the low end of a GRPO group.
QUALITIES = ("exact", "noisy", "wrong", "malformed", "adversarial")


def make_completion(
    rng: np.random.Generator, task: Task, quality: str, *, noise: float = 0.1, kind: str | None = None
) -> str:
    """A completion of controlled quality for `task` (see QUALITIES, MALFORMED_KINDS, ADVERSARIAL_KINDS)."""
    if quality in ("malformed", "adversarial"):
        kinds = applicable_kinds(quality, task.task_type)
        kind = _pick(rng, kinds) if kind is None else kind
        if kind not in kinds:
            raise ValueError(f"{quality} kind {kind!r} does not apply to {task.task_type}")
        return _malformed(rng, task, kind) if quality == "malformed" else _adversarial(rng, task, kind)
    if kind is not None:
        raise ValueError(f"kind is only for malformed or adversarial completions, not {quality!r}")
    if quality == "exact":
        return _render(rng, task, _format_answer(rng, task, task.reference["answer"]), _exact_graph_text(task))
    if quality == "noisy":
        graph = _noisy_graph_text(rng, task, noise) if "graph" in task.reference else None
        return _render(rng, task, _format_answer(rng, task, _noisy_value(rng, task, noise)), graph)
    if quality == "wrong":
        return _render(rng, task, _format_answer(rng, task, _wrong_value(rng, task)), _exact_graph_text(task))
    raise ValueError(f"unknown quality {quality!r}; expected one of {QUALITIES}")
