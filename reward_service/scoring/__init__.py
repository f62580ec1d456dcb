"""The scoring core (reward-spec v1). Imports without FastAPI, Redis or torch.

Its errors are one tree under `ScoringError` (reward_service/errors.py); `InvalidReference` was
`ReferenceError` before, a name that shadowed the builtin.
"""

from reward_service.errors import ConfigError, InvalidReference, ScoringError, UnknownTaskType
from reward_service.scoring.config import COMPONENTS, DEFAULT_CONFIG, DEFAULT_REWARD_CONFIG, RewardConfig
from reward_service.scoring.reference import TASK_TYPES, Reference, validate_reference
from reward_service.scoring.result import NOTE_WORDS, ScoreResult
from reward_service.scoring.total import score, score_batch

__all__ = [
    "COMPONENTS",
    "DEFAULT_CONFIG",
    "DEFAULT_REWARD_CONFIG",
    "NOTE_WORDS",
    "TASK_TYPES",
    "ConfigError",
    "InvalidReference",
    "Reference",
    "RewardConfig",
    "ScoreResult",
    "ScoringError",
    "UnknownTaskType",
    "score",
    "score_batch",
    "validate_reference",
]
