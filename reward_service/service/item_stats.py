"""Per-item metrics, pre-aggregated where the items are scored.

A 512-item request would cost thousands of Prometheus `observe` calls on the event loop, the one
core the whole service shares. Instead each worker buckets its chunk's items into an `ItemStats`
(plain dicts and lists: cheap to pickle) and the service merges one small object per chunk: the
histograms and notes of the scoring work the chunk did (`describe`), and per request in the chunk
only its items' counts by task and status (`count`), which the service adds once the request is
answered. Imports nothing heavy: it runs inside the scoring processes.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from typing import Any

from reward_service.scoring import NOTE_WORDS, TASK_TYPES

COMPONENT_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
REWARD_BUCKETS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 4.0, 5.0)
DURATION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    2.5, 5.0)

_TASK_TYPES = frozenset(TASK_TYPES)
_NOTES = frozenset(NOTE_WORDS)


def task_label(reference: Any) -> str:
    """A bounded label: one of the five task types, else "unknown" (never a client's free text)."""
    task = reference.get("task_type") if isinstance(reference, Mapping) else None
    return task if task in _TASK_TYPES else "unknown"


def observe(hists: dict[Any, list[float]], key: Any, buckets: tuple[float, ...], value: float) -> None:
    """Add `value` to the histogram `hists[key]` (made at zero if new): a count per bucket (a value equal to
    a bound is in that bound's bucket, as Prometheus's `le`), one for +Inf, then the sum of the values."""
    counts = hists.get(key)
    if counts is None:
        counts = hists[key] = [0.0] * (len(buckets) + 2)  # a count per bucket, one for +Inf, then the sum
    counts[bisect_left(buckets, value)] += 1
    counts[-1] += value


def _merge_counts(mine: dict[Any, int], theirs: dict[Any, int]) -> None:
    for key, n in theirs.items():
        mine[key] = mine.get(key, 0) + n


class ItemStats:
    """Counts and bucketed histograms for a set of items.

    A histogram is a list: one count per bucket, one for +Inf, then the sum of the values. `describe` runs
    once per item in the workers: components are kept in one dict per task, keyed by name, so no key
    tuple is built per observation.
    """

    __slots__ = ("components", "durations", "items", "notes", "rewards")

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], int] = {}  # (task_type, status) -> count
        self.notes: dict[str, int] = {}
        self.components: dict[str, dict[str, list[float]]] = {}  # task_type -> component -> buckets
        self.rewards: dict[str, list[float]] = {}  # task_type -> buckets
        self.durations: dict[str, list[float]] = {}  # task_type -> buckets

    def add(self, task: str, result: Mapping[str, Any], seconds: float | None = None) -> None:
        """Count one result dict (`ScoreResult.to_dict()` shape) of the given task label, and describe it."""
        key = (task, result["status"])
        items = self.items
        items[key] = items.get(key, 0) + 1
        self.describe(task, result, seconds)

    def describe(self, task: str, result: Mapping[str, Any], seconds: float | None = None) -> None:
        """Add one result to the histograms and note counts, not to the item counts."""
        status = result["status"]
        if seconds is not None:
            observe(self.durations, task, DURATION_BUCKETS, seconds)
        if status != "ok":
            return
        notes = result["diagnostics"].get("notes")
        if notes:
            own = self.notes
            for note in notes:
                word = note if note in _NOTES else "other"
                own[word] = own.get(word, 0) + 1
        per_task = self.components.get(task)
        if per_task is None:
            per_task = self.components[task] = {}
        for name, value in result["components"].items():
            if value is not None:
                observe(per_task, name, COMPONENT_BUCKETS, value)
        reward = result["reward"]
        if reward is not None:
            observe(self.rewards, task, REWARD_BUCKETS, reward)

    def count(self, items: dict[tuple[str, str], int]) -> None:
        """Add item counts by (task, status), as a worker reports them for one request's items."""
        if self.items:
            _merge_counts(self.items, items)
        else:
            self.items = items  # a one-item request's: nothing to add them to

    @property
    def empty(self) -> bool:
        return not (self.items or self.durations or self.components)

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.items, self.notes, self.components, self.rewards, self.durations)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.items, self.notes, self.components, self.rewards, self.durations = state
