"""Answer scorers by task type. Registering a task type twice is an error, never a silent override."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from reward_service.errors import UnknownTaskType
from reward_service.scoring.reference import TASK_TYPES, Reference


class AnswerScore(NamedTuple):  # a tuple: made for every item (0.35 against 0.7 us as a frozen dataclass)
    value: float  # in [0, 1]
    note: str | None = None  # the spec's note word when the prediction could not be read
    parsed: Any = None  # what was read, for `explain`


AnswerScorer = Callable[[str, Reference], AnswerScore]
_SCORERS: dict[str, AnswerScorer] = {}


def register(task_type: str) -> Callable[[AnswerScorer], AnswerScorer]:
    if task_type not in TASK_TYPES:
        raise UnknownTaskType(task_type)

    def decorate(fn: AnswerScorer) -> AnswerScorer:
        if task_type in _SCORERS:
            raise ValueError(f"an answer scorer for {task_type!r} is already registered")
        _SCORERS[task_type] = fn
        return fn

    return decorate


def answer_scorer(task_type: str) -> AnswerScorer:
    scorer = _SCORERS.get(task_type)
    if scorer is None:
        raise UnknownTaskType(task_type)
    return scorer


UNPARSABLE = AnswerScore(0.0, "answer_unparsable")
