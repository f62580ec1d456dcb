"""Every adversarial kind of the generator scores no more than an honest wrong answer would,
and an exact completion from the generator scores the maximum of every component."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reward_service.scoring import TASK_TYPES, score
from reward_service.synth.completions import make_completion
from reward_service.synth.faults import ADVERSARIAL_KINDS, MALFORMED_KINDS, applicable_kinds
from reward_service.synth.tasks import generate_task

CASES = [(kind, task_type, with_graph) for kind in ADVERSARIAL_KINDS for task_type in TASK_TYPES
         if kind in applicable_kinds("adversarial", task_type) for with_graph in (False, True)]


@pytest.mark.parametrize(("kind", "task_type", "with_graph"), CASES)
def test_adversarial_never_beats_an_honest_wrong_answer(kind, task_type, with_graph):
    for seed in range(3):
        rng = np.random.default_rng(seed)
        task = generate_task(rng, task_type, with_graph)
        honest = score(make_completion(rng, task, "wrong"), task.reference, num_tokens=400)
        hacked = score(make_completion(rng, task, "adversarial", kind=kind), task.reference, num_tokens=400)
        assert hacked.status == "ok" and honest.status == "ok"
        assert hacked.reward <= honest.reward + 1e-12, (kind, hacked.components, honest.components)


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_malformed_completions_lose_format_or_graph(kind):
    rng = np.random.default_rng(7)
    task = generate_task(rng, "multiple_choice", True)
    exact = score(make_completion(rng, task, "exact"), task.reference)
    broken = score(make_completion(rng, task, "malformed", kind=kind), task.reference)
    assert broken.reward < exact.reward


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from(TASK_TYPES), st.booleans())
def test_exact_completion_scores_the_maximum(seed, task_type, with_graph):
    rng = np.random.default_rng(seed)
    task = generate_task(rng, task_type, with_graph)
    result = score(make_completion(rng, task, "exact"), task.reference)
    c = result.components
    assert c["format"] == 1.0 and c["answer"] == pytest.approx(1.0)
    if with_graph:
        assert c["graph_node"] == pytest.approx(1.0)
        assert c["graph_edge"] is None or c["graph_edge"] == pytest.approx(1.0)
    else:
        assert c["graph_node"] is None and c["graph_edge"] is None
