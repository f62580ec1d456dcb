"""Every public golden case and every worked example of reward-spec section 9, to 1e-9."""

import pytest
from service_fixtures import golden_cases

from reward_service.scoring import RewardConfig, score

GOLDEN = golden_cases()


def assert_close(actual, expected):
    if expected is None:
        assert actual is None
    else:
        assert actual is not None and abs(actual - expected) <= 1e-9, (actual, expected)


def test_golden_file_is_complete():
    assert len(GOLDEN) == 52


@pytest.mark.parametrize("case", GOLDEN, ids=[c["id"] for c in GOLDEN])
def test_golden_case(case):
    result = score(case["completion"], case["reference"], RewardConfig.build(case.get("config")),
                   case.get("num_tokens"))
    assert result.status == "ok" and result.mask is False
    assert_close(result.reward, case["expected"]["reward"])
    assert set(result.components) == set(case["expected"]["components"])
    for name, value in case["expected"]["components"].items():
        assert_close(result.components[name], value)


def _completion(graph_text: str, answer: str = "A") -> str:
    return f"<think>\nLet me look.\n<graph>{graph_text}</graph>\n</think>\n<answer>{answer}</answer>"


TRIANGLE = {"task_type": "multiple_choice", "answer": "A", "graph": {"a": [0, 0], "b": [3, 0], "c": [0, 4]}}


def test_section9_numerical():
    ref = {"task_type": "numerical", "answer": 4.0}
    assert_close(score("<think>x</think><answer>3.5 m</answer>", ref).components["answer"], 0.8)
    assert score("<think>x</think><answer>3.5 to 4</answer>", ref).components["answer"] == 0.0


def test_section9_rotated_triangle():
    r = score(_completion('{"a": [0,0], "b": [0,3], "c": [-4,0]}'), TRIANGLE)
    assert_close(r.components["graph_node"], (1 + 1 - 18**0.5 / 5) / 3)
    assert_close(r.components["graph_edge"], 1.0)
    signed = RewardConfig.build({"graph": {"angle_mode": "signed_planar"}})
    assert_close(score(_completion('{"a": [0,0], "b": [0,3], "c": [-4,0]}'), TRIANGLE, signed).components["graph_edge"], 1.0)


def test_section9_mirrored_triangle():
    mirrored = _completion('{"a": [0,0], "b": [-3,0], "c": [0,4]}')
    assert_close(score(mirrored, TRIANGLE).components["graph_edge"], 1.0)
    signed = RewardConfig.build({"graph": {"angle_mode": "signed_planar"}})
    assert_close(score(mirrored, TRIANGLE, signed).components["graph_edge"], 0.5 + 0.5 * (0 + 0.36 + 0.64) / 3)


def test_section9_exact_graph():
    r = score(_completion('{"a": [0,0], "b": [3,0], "c": [0,4]}'), TRIANGLE)
    assert r.components["graph_node"] == 1.0 and r.components["graph_edge"] == 1.0
