"""The public API that trainers and the reward client import is pinned: changing it is a decision,
made here on purpose, never a side effect of moving code."""

from __future__ import annotations

import importlib

import pytest

import reward_service.scoring

SCORING_ALL = [
    "COMPONENTS", "DEFAULT_CONFIG", "DEFAULT_REWARD_CONFIG", "NOTE_WORDS", "TASK_TYPES", "ConfigError",
    "InvalidReference", "Reference", "RewardConfig", "ScoreResult", "ScoringError", "UnknownTaskType", "score",
    "score_batch", "validate_reference",
]

# What other packages import by path (the reward client, the trainer, the service's own command line).
IMPORTS = {
    "reward_service.schemas": ["RewardsRequest", "RewardItem", "RewardsResponse", "RewardResult", "Components",
                               "Diagnostics", "OpenRLHFRequest", "OpenRLHFResponse", "ConfigResponse", "ErrorBody",
                               "AdvantageMode", "ID_MAX_CHARS"],
    "reward_service.scoring.advantages": ["group_advantages"],
    "reward_service.errors": ["ScoringError", "ConfigError", "InvalidReference", "UnknownTaskType", "GraphError",
                              "RelaxedJSONError", "TooDeepError"],
    "reward_service.synth.scenes": ["generate_scene", "Scene"],
    "reward_service.synth.tasks": ["generate_task", "Task"],
    "reward_service.synth.completions": ["make_completion", "QUALITIES"],
    "reward_service.synth.mixes": ["standard_mix", "labelled_mix", "worst_case_items", "write_jsonl"],
    "reward_service.cli.main": ["main"],
}


def test_the_scoring_core_exports_exactly_this():
    assert sorted(reward_service.scoring.__all__) == sorted(SCORING_ALL)
    assert all(hasattr(reward_service.scoring, name) for name in SCORING_ALL)


@pytest.mark.parametrize("module", sorted(IMPORTS))
def test_names_imported_by_path_are_there(module):
    loaded = importlib.import_module(module)
    assert [name for name in IMPORTS[module] if not hasattr(loaded, name)] == []


def test_the_scoring_errors_are_one_tree():
    from reward_service import errors

    for name in IMPORTS["reward_service.errors"]:
        assert issubclass(getattr(errors, name), errors.ScoringError) and issubclass(getattr(errors, name), ValueError)


def test_the_task_fields_the_trainer_reads():
    import numpy as np

    from reward_service.synth.tasks import generate_task

    task = generate_task(np.random.default_rng(0), "multiple_choice", with_graph=True)
    assert task.task_type == "multiple_choice" and task.question and task.reference["options"]
    assert {"task_type", "answer", "options", "graph", "graph_scale"} <= set(task.reference)


def test_the_synth_package_re_exports_nothing():
    import reward_service.synth

    assert [name for name in vars(reward_service.synth) if not name.startswith("__")] == [] or all(
        isinstance(value, type(reward_service.synth)) for name, value in vars(reward_service.synth).items()
        if not name.startswith("__"))  # only its submodules, once imported
