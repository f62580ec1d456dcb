"""The scoring core (reward-spec v1). Imports without FastAPI, Redis or torch."""

from reward_service.scoring.config import (
    COMPONENTS,
    DEFAULT_CONFIG,
    DEFAULT_REWARD_CONFIG,
    ConfigError,
    RewardConfig,
)
from reward_service.scoring.reference import TASK_TYPES, Reference, ReferenceError, validate_reference
from reward_service.scoring.result import NOTE_WORDS, ScoreResult
from reward_service.scoring.total import score, score_batch

__all__ = [
    "COMPONENTS",
    "DEFAULT_CONFIG",
    "DEFAULT_REWARD_CONFIG",
    "NOTE_WORDS",
    "TASK_TYPES",
    "ConfigError",
    "Reference",
    "ReferenceError",
    "RewardConfig",
    "ScoreResult",
    "score",
    "score_batch",
    "validate_reference",
]
