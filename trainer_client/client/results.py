"""What a `score` call returns, and the GRPO shape of its input."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ScoredItem:
    """One item's result (api.md's result object, with the notes lifted out of `diagnostics`)."""

    id: str
    group_id: str | None
    status: str  # "ok", "timeout" or "error"
    mask: bool  # True exactly when status is not "ok": leave the item out of the update
    reward: float | None  # None exactly when masked, never a stand-in 0
    components: dict[str, float | None]
    advantage: float | None
    notes: tuple[str, ...]  # reward-spec's note words: what the completion got wrong
    cached: bool
    error: str | None = None  # a masked item: why it was not scored
    diagnostics: dict[str, Any] = field(default_factory=dict)  # all of it (with explain: the parse)


class ScoredItems(list[ScoredItem]):
    """The results of one `score` call, in input order, with the config and scorer they were scored
    under (every response carries both; a batch split over a rolling deploy may see two)."""

    def __init__(self, items: list[ScoredItem], reward_config_ids: list[str], scorer_versions: list[str]) -> None:
        super().__init__(items)
        self.reward_config_ids = sorted(set(reward_config_ids))
        self.scorer_versions = sorted(set(scorer_versions))

    @property
    def rewards(self) -> list[float | None]:
        return [r.reward for r in self]

    @property
    def masked(self) -> int:
        return sum(r.mask for r in self)


def grpo_items(completions: Sequence[Sequence[str]], references: Sequence[Mapping[str, Any]], *,
               num_tokens: Sequence[Sequence[int | None]] | None = None, prefix: str = "p") -> list[dict[str, Any]]:
    """Items for prompts x G completions: ids `{prefix}{p}-{g}`, group ids `{prefix}{p}`, one reference
    per prompt (sent once per item; the service shares equal references)."""
    if len(completions) != len(references):
        raise ValueError(f"{len(completions)} prompts' completions but {len(references)} references")
    if num_tokens is not None and [len(c) for c in completions] != [len(n) for n in num_tokens]:
        raise ValueError("num_tokens must have the shape of completions")
    items = []
    for p, (group, reference) in enumerate(zip(completions, references, strict=True)):
        for g, completion in enumerate(group):
            item: dict[str, Any] = {"id": f"{prefix}{p}-{g}", "group_id": f"{prefix}{p}", "completion": completion,
                                    "reference": reference}
            if num_tokens is not None and num_tokens[p][g] is not None:
                item["num_tokens"] = num_tokens[p][g]
            items.append(item)
    return items


def regroup(results: Sequence[T], shape: Sequence[int]) -> list[list[T]]:
    out, start = [], 0
    for n in shape:
        out.append(list(results[start:start + n]))
        start += n
    return out
