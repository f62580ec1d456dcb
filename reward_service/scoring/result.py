"""The result of scoring one item, shaped as api.md's result object (less id, group_id, advantage, cached)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from reward_service.scoring.config import COMPONENTS

# Note words of reward-spec v1, plus `answer_unparsable`: the spec asks for "a note" when a prediction
# cannot be parsed without naming it. Unscored items carry no note; their `diagnostics.error` says why.
NOTE_WORDS = (
    "completion_too_large",
    "answer_missing",
    "answer_ambiguous",
    "answer_too_large",
    "answer_unparsable",
    "graph_missing",
    "graph_ambiguous",
    "graph_invalid",
    "graph_too_large",
)

STATUSES = ("ok", "timeout", "error")


@dataclass
class ScoreResult:
    status: str
    reward: float | None
    components: dict[str, float | None]
    diagnostics: dict[str, Any] = field(default_factory=lambda: {"notes": []})

    def __post_init__(self) -> None:
        # api.md: a scored item has a reward. An "ok" without a finite one would be sent as null (JSON has
        # no infinity) and cached: refuse to make it, so the scorer answers the item "error" instead.
        if self.status == "ok" and (self.reward is None or not math.isfinite(self.reward)):
            raise ValueError(f"a scored result needs a finite reward, got {self.reward}")

    @property
    def mask(self) -> bool:
        """True exactly when the item was not scored: the trainer leaves it out of the advantage."""
        return self.status != "ok"

    @property
    def notes(self) -> list[str]:
        notes: list[str] = self.diagnostics.setdefault("notes", [])
        return notes

    @classmethod
    def unscored(cls, status: str, message: str, *, retryable: bool = False) -> ScoreResult:
        """An item that could not be scored: reward null, mask true, never a silent zero (spec 7).

        `retryable` says the cause was the service's state, not the item (the service shut down, a
        worker was lost with no item to blame, the request waited past its deadline): the same item
        sent again can score. An item whose own deadline passed, or that made the scorer fail, is not.
        """
        return cls(
            status=status,
            reward=None,
            components=dict.fromkeys(COMPONENTS),
            diagnostics={"notes": [], "error": message, "retryable": retryable},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "mask": self.mask,
            "reward": self.reward,
            "components": dict(self.components),
            "diagnostics": self.diagnostics,
        }
