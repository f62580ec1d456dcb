"""Answer rewards per task type: exact, near, far, unparsable, and the spec's edge cases."""

import pytest

from reward_service.parsing.numbers import extract_numbers
from reward_service.scoring import score


def answer(text: str, reference: dict) -> tuple[float, list[str]]:
    r = score(f"<think>ok</think><answer>{text}</answer>", reference)
    return r.components["answer"], r.diagnostics["notes"]


MC = {"task_type": "multiple_choice", "answer": "B", "options": ["left", "right", "behind"]}
MC_FREE = {"task_type": "multiple_choice", "answer": "B"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("B", 1), ("b", 1), ("(b)", 1), ("[B]", 1), ("B.", 1), ("**B**", 1), ("`B`", 1), ("'B'", 1),
     ("\u201cB\u201d", 1), ("The answer is B", 1), ("Answer : B", 1), ("option:B", 1), ("B) right", 1),
     ("right", 1), (" RIGHT ", 1), ("A", 0), ("b is it", 0), ("optionB", 0), ("Answers: B", 0),
     ("B or C", 0), ("B, A is wrong", 0), ("B/C", 0), ("B & (C)", 0), ("Bx", 0), ("D", 0), ("", 0)],
)
def test_multiple_choice_reading(text, expected):
    assert answer(text, MC)[0] == expected


def test_multiple_choice_letters_without_options():
    assert answer("B, I think", MC_FREE)[0] == 0  # I is an option letter when no options are given
    assert answer("B, I think", MC)[0] == 1
    assert answer("J", {"task_type": "multiple_choice", "answer": "J"})[0] == 1
    assert answer("right", MC_FREE)[0] == 0  # option text needs options


def test_multiple_choice_duplicate_option_text_is_not_a_selection():
    ref = {"task_type": "multiple_choice", "answer": "A", "options": ["same", "same"]}
    assert answer("same", ref) == (0.0, ["answer_unparsable"])


NUM = {"task_type": "numerical", "answer": 4.0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4", 1.0), ("4.0 metres", 1.0), ("about 4 m, i.e. 4 m", 1.0), ("3.5 m", 0.8), ("6", 0.1), ("7", 0.0),
     ("four", 1.0), ("Four.", 1.0), ("a", 0.0), ("an", 0.0), ("3.5 to 4", 0.0), ("4,000", 0.0),
     ("x=4", 1.0), ("-4", 0.0), ("4e0", 1.0), ("none", 0.0)],
)
def test_numerical_mra(text, expected):
    assert answer(text, NUM)[0] == pytest.approx(expected, abs=1e-12)


def test_numerical_zero_and_thousands():
    assert answer("0", {"task_type": "numerical", "answer": 0})[0] == 1.0
    assert answer("0.001", {"task_type": "numerical", "answer": 0})[0] == 0.0
    assert answer("1,234.5", {"task_type": "numerical", "answer": 1234.5})[0] == 1.0
    assert answer("0,500", {"task_type": "numerical", "answer": 500})[1] == ["answer_ambiguous"]
    assert answer("no idea", NUM)[1] == ["answer_unparsable"]


@pytest.mark.parametrize(
    ("text", "numbers"),
    [("12.5-17", [12.5, 17]), ("12.5 - 17", [12.5, 17]), ("4s-8s", [4, 8]), ("[-3, 4]", [-3, 4]),
     ("[0 -1]", [0, -1]), ("12.5 -17", [12.5, -17]), ("x=-2", [-2]), (".5", [0.5]), ("5.", [5]),
     ("[0,100]", [0, 100]), ("x1=12", [1, 12]), ("\u0663", [])],
)
def test_number_sign_rules(text, numbers):
    assert extract_numbers(text) == numbers


TEMPORAL = {"task_type": "temporal_iou", "answer": [4.0, 8.0]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("[4, 8]", 1.0), ("4s-8s", 1.0), ("[5, 9]", 0.6), ("[10, 12]", 0.0), ("[9, 5]", 0.0), ("6", 0.0),
     ("1, 2, 3", 0.0)],
)
def test_temporal_iou(text, expected):
    assert answer(text, TEMPORAL)[0] == pytest.approx(expected)


def test_temporal_point_intervals():
    point = {"task_type": "temporal_iou", "answer": [3.0, 3.0]}
    assert answer("[3, 3]", point)[0] == 1.0
    assert answer("[4, 4]", point)[0] == 0.0


BOX = {"task_type": "box_iou", "answer": [0, 0, 2, 2]}


def test_box_iou():
    assert answer("[0, 0, 2, 2]", BOX)[0] == 1.0
    assert answer("[1, 1, 3, 3]", BOX)[0] == pytest.approx(1 / 7)
    assert answer("[5, 5, 6, 6]", BOX)[0] == 0.0
    assert answer("[1, 1, 1, 3]", BOX)[0] == 0.0  # degenerate: max not above min
    assert answer("[2, 2, 0, 0]", BOX)[0] == 0.0
    assert answer("[0, 0, 2, 2, 2, 2]", BOX)[1] == ["answer_unparsable"]
    box3 = {"task_type": "box_iou", "answer": [0, 0, 0, 1, 1, 1]}
    assert answer("[0, 0, 0, 1, 1, 2]", box3)[0] == pytest.approx(0.5)
    assert answer("[0, 0, 1, 1]", box3)[0] == 0.0


TRACK = {"task_type": "track_iou", "answer": {"0": [0, 0, 2, 2], "8": [2, 2, 4, 4]}}


def test_track_iou():
    assert answer('{"0": [0, 0, 2, 2], "8": [2, 2, 4, 4]}', TRACK)[0] == 1.0
    assert answer("{frame_0: (0, 0, 2, 2), 't8': [2, 2, 4, 4], '9': [0, 0, 1, 1],}", TRACK)[0] == 1.0
    assert answer('{"0": [0, 0, 2, 2]}', TRACK)[0] == 0.5  # missing frame counts 0
    assert answer('{"0": [0, 0, 2, 2], "8": [2, 2, 4]}', TRACK)[0] == 0.5  # not 4 numbers
    assert answer('{"0": [0, 0, 2, 2], "8": [2, 2, NaN, 4]}', TRACK)[0] == 0.5
    assert answer('{"0": [9, 9, 9, 9], "0": [0, 0, 2, 2]}', TRACK)[0] == 0.5  # later key wins
    assert answer("[0, 0, 2, 2]", TRACK)[1] == ["answer_unparsable"]
    too_many = "{" + ", ".join(f'"{i}": [0, 0, 1, 1]' for i in range(257)) + "}"
    assert answer(too_many, TRACK) == (0.0, ["answer_too_large"])
    deep = '{"0": ' + "[" * 70 + "]" * 70 + "}"
    assert answer(deep, TRACK) == (0.0, ["answer_too_large"])


def test_answer_block_faults():
    ref = NUM
    assert score("<think>x</think>", ref).diagnostics["notes"] == ["answer_missing"]
    two = score("<think>x</think><answer>4</answer><answer>4</answer>", ref)
    assert two.components["answer"] == 0 and two.diagnostics["notes"] == ["answer_ambiguous"]
    long = score("<think>x</think><answer>4" + " " * 10 + "x" * 1030 + "</answer>", ref)
    assert long.components["answer"] == 0 and long.diagnostics["notes"] == ["answer_too_large"]
    # format 0 does not zero the answer
    r = score("prefix <think>x</think><answer>4</answer>", ref)
    assert r.components == {"format": 0.0, "answer": 1.0, "graph_node": None, "graph_edge": None, "length": None}
