"""A test-only scorer for the worker processes: a completion's first word can make it slow, stuck or fatal.

Used through the `scorer` setting ("slow_scorer:score"); production code has no such hooks.
"""

from __future__ import annotations

import os
import time
from typing import Any

from reward_service.scoring import RewardConfig, ScoreResult
from reward_service.scoring import score as real_score


def score(completion: str, reference: Any, config: RewardConfig | None = None, num_tokens: int | None = None,
          explain: bool = False) -> ScoreResult:
    head, _, rest = completion.lstrip().partition(" ")
    if head == "STUCK":  # pure-Python busy loop: only killing the process stops it
        while True:
            pass
    if head == "CRASH":
        os._exit(3)
    if head == "RAISE":
        raise RuntimeError("scorer bug")
    if head == "SLEEP":
        seconds, _, completion = rest.partition(" ")
        time.sleep(float(seconds))
    return real_score(completion, reference, config, num_tokens, explain)
