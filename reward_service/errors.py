"""The scoring core's errors: one small tree under `ScoringError`.

    ScoringError (ValueError)          the root: catch it to catch any of the core's refusals
    ├── ConfigError                    a reward config that breaks reward-spec section 8
    ├── InvalidReference               a reference that breaks the spec: the caller's bug (HTTP 422)
    │   └── UnknownTaskType            a task type no answer scorer is registered for
    ├── GraphError                     a graph that cannot be scored; `note` is the spec's note word
    └── RelaxedJSONError               text that is not JSON, even relaxed
        └── TooDeepError               nesting deeper than the limit (the graph is too large)

A completion's faults are never errors (they are zeros with notes); these are. All derive from
ValueError, as the ones they replace did. Only the standard library: every layer imports this.
The service's HTTP errors are another tree (reward_service.service.errors).
"""

from __future__ import annotations


class ScoringError(ValueError):
    """Root of the scoring core's errors."""


class ConfigError(ScoringError):
    """A reward config that breaks section 8: unknown key, wrong type, negative weight, min > max."""


class InvalidReference(ScoringError):
    """An invalid reference; the message names the faulty field. (It was `ReferenceError`, which
    shadowed the builtin of that name.)"""


class UnknownTaskType(InvalidReference):
    """A task type no answer scorer is registered for."""

    def __init__(self, task_type: object) -> None:
        super().__init__(f"reference.task_type: no answer scorer for task type {task_type!r}")
        self.task_type = task_type


class GraphError(ScoringError):
    """A graph that cannot be scored; `note` is the spec's note word."""

    def __init__(self, note: str, message: str) -> None:
        super().__init__(message)
        self.note = note


class RelaxedJSONError(ScoringError):
    """Text that is not JSON, even relaxed."""


class TooDeepError(RelaxedJSONError):
    """Nesting deeper than the limit (section 4): the graph is too large, not merely invalid."""
