"""Small helpers the generator's modules share: seeded picks, rounding, names, distances."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def _pick(rng: np.random.Generator, seq: Sequence[T]) -> T:
    return seq[int(rng.integers(len(seq)))]


def _shuffled(rng: np.random.Generator, seq: Sequence[T]) -> list[T]:
    return [seq[int(i)] for i in rng.permutation(len(seq))]


def _r2(x: float) -> float:
    return round(float(x), 2) + 0.0  # + 0.0 turns -0.0 into 0.0, which reads better in JSON


def _num(x: float | int) -> str:
    """The shortest text that reads back as the same value, so an exact answer parses exactly."""
    return str(x) if isinstance(x, int) else repr(float(x))


def _base(name: str) -> str:
    """Our own naming: "traffic-light_2" -> "traffic-light", "table" -> "table"."""
    head, _, tail = name.rpartition("_")
    return head if head and tail.isdigit() else name


def _dist(a: Sequence[float], b: Sequence[float]) -> float:
    return float(np.linalg.norm(np.subtract(a, b)))

