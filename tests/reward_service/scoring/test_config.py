"""Reward config: defaults, deep merge, validation errors, canonical id; reference validation."""

import hashlib
import json

import pytest

from reward_service.scoring import (
    DEFAULT_CONFIG,
    ConfigError,
    InvalidReference,
    RewardConfig,
    validate_reference,
)


def test_default_id_is_canonical_sha256():
    canonical = json.dumps(DEFAULT_CONFIG, sort_keys=True, separators=(",", ":"))
    assert RewardConfig.build().id == hashlib.sha256(canonical.encode()).hexdigest()[:16]


def test_partial_override_merges_and_changes_id():
    cfg = RewardConfig.build({"weights": {"graph_node": 1}})
    assert cfg.weights["graph_node"] == 1.0 and cfg.weights["answer"] == 1.0
    assert cfg.id != RewardConfig.build().id
    assert RewardConfig.build({"weights": {"graph_node": 1}}).id == RewardConfig.build({"weights": {"graph_node": 1.0}}).id
    assert RewardConfig.build({"length": {"min_tokens": 10}}, base=cfg).weights["graph_node"] == 1.0


@pytest.mark.parametrize(
    ("override", "words"),
    [({"weights": {"format": -1}}, "weights.format"), ({"weights": {"style": 1}}, "unknown"),
     ({"length": {"min_tokens": 600}}, "above"), ({"weights": {"answer": "1"}}, "number"),
     ({"weights": {"answer": True}}, "number"), ({"graph": {"angle_mode": "signed"}}, "angle_mode"),
     ({"graph": {"requires_format": 1}}, "requires_format"), ({"limits": {"max_completion_chars": 0}}, ">= 1"),
     ({"length": {"max_tokens": 1.5}}, "integer"), ({"graph": 3}, "object"), ({"weights": {"answer": float("inf")}}, "finite")],
)
def test_invalid_configs(override, words):
    with pytest.raises(ConfigError, match=words):
        RewardConfig.build(override)


@pytest.mark.parametrize(
    ("reference", "field"),
    [({"task_type": "multiple_choice", "answer": "E", "options": ["a", "b"]}, "reference.answer"),
     ({"task_type": "numerical", "answer": "4"}, "reference.answer"),
     ({"task_type": "numerical", "answer": float("nan")}, "reference.answer"),
     ({"task_type": "temporal_iou", "answer": [5, 4]}, "reference.answer"),
     ({"task_type": "box_iou", "answer": [0, 0, 0, 1]}, "reference.answer"),
     ({"task_type": "track_iou", "answer": {}}, "reference.answer"),
     ({"task_type": "counting", "answer": 1}, "reference.task_type"),
     ({"answer": 1}, "reference.task_type"),
     ({"task_type": "numerical", "answer": 1, "graph": {"a": [0, 0], "b": [0, 0, 0]}}, "reference.graph"),
     ({"task_type": "numerical", "answer": 1, "graph": {"a": [0, float("nan")]}}, "reference.graph"),
     ({"task_type": "numerical", "answer": 1, "graph": {"frames": {"0": {}}}}, "reference.graph"),
     ({"task_type": "numerical", "answer": 1, "graph": {"nodes": 5}}, "reference.graph"),
     ({"task_type": "numerical", "answer": 1, "graph": {"a": [0, 0]}, "graph_scale": 0}, "reference.graph_scale"),
     ({"task_type": "numerical", "answer": 1, "graph": {"a": [0, 0]}, "graph_scale": float("nan")},
      "reference.graph_scale")],
)
def test_invalid_references_name_the_field(reference, field):
    with pytest.raises(InvalidReference, match=field):
        validate_reference(reference)


def test_reference_cache_does_not_confuse_null_and_nan():
    good = {"task_type": "numerical", "answer": 1, "graph": {"a": [0, 0]}, "graph_scale": None}
    assert validate_reference(good).graph_scale is None
    with pytest.raises(InvalidReference):
        validate_reference({**good, "graph_scale": float("nan")})


def test_a_reference_is_bounded_in_depth_and_size_extra_keys_included():
    def nested(depth):
        return json.loads("[" * depth + "]" * depth)

    base = {"task_type": "multiple_choice", "answer": "B"}
    assert validate_reference({**base, "x": nested(63)}).answer == "B"  # 64 levels with the reference itself
    with pytest.raises(InvalidReference, match="deeper than 64"):
        validate_reference({**base, "x": nested(64)})
    with pytest.raises(InvalidReference, match="over the limit"):
        validate_reference({**base, "question": "x" * (1 << 20)})


def test_a_weight_is_bounded_so_no_total_overflows():
    assert RewardConfig.build({"weights": {"answer": 1e6}}).weights["answer"] == 1e6
    with pytest.raises(ConfigError, match=r"weights\.answer"):
        RewardConfig.build({"weights": {"answer": 1e308}})


def test_no_scored_result_is_made_without_a_finite_reward():
    from reward_service.scoring import ScoreResult

    for reward in (None, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="finite reward"):
            ScoreResult("ok", reward, {})
    assert ScoreResult.unscored("error", "x").reward is None


def test_every_task_type_has_one_answer_scorer_and_an_unknown_one_is_a_clear_error():
    from reward_service.errors import ScoringError, UnknownTaskType
    from reward_service.scoring import TASK_TYPES
    from reward_service.scoring.registry import answer_scorer, register

    assert all(callable(answer_scorer(task_type)) for task_type in TASK_TYPES)
    with pytest.raises(UnknownTaskType, match="counting") as raised:
        answer_scorer("counting")
    assert isinstance(raised.value, ScoringError) and isinstance(raised.value, ValueError)
    with pytest.raises(UnknownTaskType):
        register("counting")
    with pytest.raises(ValueError, match="already registered"):
        register("numerical")(lambda prediction, reference: None)
