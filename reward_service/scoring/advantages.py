"""Group advantages of api.md: `grpo`, `dr_grpo` and `rloo`, over each group's scored items."""

from __future__ import annotations

import math
from collections.abc import Sequence


def group_advantages(rewards: Sequence[float | None], groups: Sequence[str], mode: str) -> list[float | None]:
    """One advantage per item: null for masked items (reward null), which are left out of their group.

    grpo: (r - mean) / (std + 1e-6) with Bessel's correction (as torch.std); dr_grpo: r - mean;
    rloo: r minus the mean of the group's other items. A group of one scored item gets 0.
    """
    members: dict[str, list[int]] = {}
    for i, (reward, group) in enumerate(zip(rewards, groups, strict=True)):
        if reward is not None:
            members.setdefault(group, []).append(i)
    out: list[float | None] = [None] * len(rewards)
    for idx in members.values():
        values = [float(rewards[i]) for i in idx]  # type: ignore[arg-type]  # None was filtered out above
        n = len(values)
        if n == 1:
            out[idx[0]] = 0.0
            continue
        total = math.fsum(values)
        mean = total / n
        if mode == "grpo":
            std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
            scaled = [(v - mean) / (std + 1e-6) for v in values]
        elif mode == "dr_grpo":
            scaled = [v - mean for v in values]
        elif mode == "rloo":
            scaled = [v - (total - v) / (n - 1) for v in values]
        else:
            raise ValueError(f"unknown advantage mode {mode!r}")
        for i, a in zip(idx, scaled, strict=True):
            out[i] = a
    return out
