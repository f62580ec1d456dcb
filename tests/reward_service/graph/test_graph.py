"""Graph rewards: shapes, categories, frames, matching, gates, limits and invariances."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from reward_service.graph import category, frame_number, read_graph
from reward_service.parsing.relaxed_json import loads_relaxed
from reward_service.scoring import RewardConfig, graph_reward, score

SIGNED = RewardConfig.build({"graph": {"angle_mode": "signed_planar"}})


def completion(graph) -> str:
    text = graph if isinstance(graph, str) else json.dumps(graph)
    return f"<think>\nscene\n<graph>{text}</graph>\n</think>\n<answer>A</answer>"


def ref_of(graph, **extra) -> dict:
    return {"task_type": "multiple_choice", "answer": "A", "graph": graph, **extra}


@pytest.mark.parametrize(
    ("name", "cat"),
    [("Chair 2", "chair"), ("chair_2", "chair"), ("chair#2", "chair"), ("traffic-light_10", "traffic_light"),
     ("chair_a", "chair_a"), (" Big  Red-Cup #03 ", "big_red_cup"), ("cup_1_2", "cup_1")],
)
def test_category(name, cat):
    assert category(name) == cat


def test_category_is_linear_on_long_digit_runs():
    assert category("1" * 20000 + "x") == "1" * 20000 + "x"


@pytest.mark.parametrize(
    ("key", "number"),
    [("8", 8), ("frame_8", 8), ("t08x3", 8), ("x", None), ("\u0663 4", 4), ("f" * 40 + "12", 12), ("f" * 40, None)],
)
def test_frame_number_is_the_first_run_of_ascii_digits(key, number):
    assert frame_number(key) == number
    assert frame_number(key) == number  # again: short keys come from the cache the second time


def test_repeated_keys_are_separate_nodes():
    g = read_graph(loads_relaxed('{"cup": [0, 0], "cup": [1, 0]}'))
    assert [n.pos for n in g.frames[0]] == [(0.0, 0.0), (1.0, 0.0)]


def test_invalid_nodes_are_dropped_not_fatal():
    ref = ref_of({"a": [0, 0], "b": [3, 0]})
    r = score(completion('{"a": [0, 0], "b": [3, NaN], "c": [1e7, 0], "d": "x", "e": [true, 1]}'), ref)
    assert r.components["graph_node"] == pytest.approx(0.5)  # a matched; b dropped, so 1 of max(1,2)


@pytest.mark.parametrize(
    ("text", "note"),
    [("[1, 2", "graph_invalid"), ("5", "graph_invalid"), ('{"frames": {"x": {"a": [0, 0]}}}', "graph_invalid"),
     ("[" * 70 + "]" * 70, "graph_too_large"), (json.dumps({f"n{i}": [i, 0] for i in range(25)}), "graph_too_large"),
     (json.dumps({"frames": {str(i): {"a": [0, 0]} for i in range(17)}}), "graph_too_large"),
     ('{"a": [0, 0], "pad": "' + "x" * 33000 + '"}', "graph_too_large"),
     ('{"a": [0, 0], "pad": "' + "\u20ac" * 11000 + '"}', "graph_too_large")],  # 11,024 characters, 33,024 bytes
)
def test_graph_faults(text, note):
    r = score(completion(text), ref_of({"a": [0, 0], "b": [3, 0]}))
    assert r.components["graph_node"] == 0 and r.components["graph_edge"] == 0
    assert r.diagnostics["notes"] == [note]


def test_missing_and_ambiguous_graph():
    ref = ref_of({"a": [0, 0], "b": [3, 0]})
    assert score("<think>x</think><answer>A</answer>", ref).diagnostics["notes"] == ["graph_missing"]
    two = "<think><graph>{}</graph><graph>{}</graph></think><answer>A</answer>"
    assert score(two, ref).diagnostics["notes"] == ["graph_ambiguous"]
    outside = '<think>x</think><graph>{"a": [0, 0], "b": [3, 0]}</graph><answer>A</answer>'
    assert score(outside, ref).diagnostics["notes"] == ["graph_missing"]


def test_edge_null_when_reference_has_no_pair():
    r = score(completion({"a": [0, 0]}), ref_of({"a": [0, 0]}))
    assert r.components["graph_node"] == 1.0 and r.components["graph_edge"] is None
    missing = score("<think>x</think><answer>A</answer>", ref_of({"a": [0, 0]}))
    assert missing.components["graph_node"] == 0.0 and missing.components["graph_edge"] is None


def test_wrong_dimension_counts_but_never_matches():
    r = score(completion({"a": [0, 0, 0], "b": [3, 0]}), ref_of({"a": [0, 0], "b": [3, 0]}))
    assert r.components["graph_node"] == pytest.approx(0.5)


def test_dynamic_frames_nearest_and_ties_lower():
    ref = ref_of({"frames": {"0": {"a": [0, 0]}, "10": {"a": [10, 0]}}}, graph_scale=100)
    # predicted frames 4 and 6 for ref frame 10 -> 6; for ref frame 0 -> 4. Frame 5 ties 0/10 -> the lower.
    r = score(completion({"frames": {"4": {"a": [0, 0]}, "6": {"a": [10, 0]}}}), ref)
    assert r.components["graph_node"] == 1.0
    tie = score(completion({"frames": {"t5": {"a": [0, 0]}}}), ref)
    assert tie.components["graph_node"] == pytest.approx((1 + 0.9) / 2)


def test_static_prediction_stands_for_every_frame():
    ref = ref_of({"frames": {"0": {"a": [0, 0], "b": [1, 0]}, "5": {"a": [0, 0], "b": [2, 0]}}}, graph_scale=10)
    static = score(completion({"a": [0, 0], "b": [1.5, 0]}), ref)
    dynamic_same = score(completion({"frames": {"3": {"a": [0, 0], "b": [1.5, 0]}}}), ref)
    assert static.components == dynamic_same.components


def test_instances_matched_optimally_within_category():
    ref = ref_of({"cup_1": [0, 0], "cup_2": [10, 0], "plate": [5, 5]}, graph_scale=20)
    swapped = score(completion({"cup 9": [10, 0], "cup 3": [0, 0], "plate": [5, 5]}), ref)
    assert swapped.components["graph_node"] == 1.0 and swapped.components["graph_edge"] == pytest.approx(1.0)


def test_gates():
    ref = ref_of({"a": [0, 0], "b": [3, 0]})
    text = '<think><graph>{"a": [0, 0], "b": [3, 0]}</graph></think><answer>B</answer>'
    assert score("junk" + text, ref).components["graph_node"] == 0.0
    ungated = RewardConfig.build({"graph": {"requires_format": False}})
    assert score("junk" + text, ref, ungated).components["graph_node"] == 1.0
    need_answer = RewardConfig.build({"graph": {"requires_answer": True}})
    assert score(text, ref, need_answer).components["graph_edge"] == 0.0
    assert score(text, ref).components["graph_edge"] == 1.0
    # gated, the graph is still explained (it is scored for that alone), and still parsed for its note
    gated = score("junk" + text, ref, explain=True)
    assert gated.components["graph_node"] == 0.0 and gated.diagnostics["correspondence"][0]["score"] == 1.0
    assert score("junk" + text.replace("[3, 0]}", "[3, 0]"), ref).diagnostics["notes"] == ["graph_invalid"]


def test_length_term():
    ref = {"task_type": "numerical", "answer": 4.0}
    ok = "<think>x</think><answer>4</answer>"
    assert score(ok, ref, num_tokens=400).components["length"] == 1.0
    assert score(ok, ref, num_tokens=300).components["length"] == 0.0
    assert score(ok, ref, num_tokens=513).components["length"] == 0.0
    assert score("<think>x</think><answer>9</answer>", ref, num_tokens=400).components["length"] == 0.0
    assert score(ok, ref).components["length"] is None


def test_completion_too_large():
    ref = ref_of({"a": [0, 0]})
    r = score("<think>" + "x" * 262200 + "</think><answer>A</answer>", ref, num_tokens=400)
    assert r.reward == 0.0 and r.diagnostics["notes"] == ["completion_too_large"]
    assert r.components == {"format": 0.0, "answer": 0.0, "graph_node": 0.0, "graph_edge": None, "length": 0.0}


# ---- invariance: a rigid motion of the whole prediction keeps every distance and unsigned angle ----

REF3 = {"lamp": [0.0, 0.0, 0.0], "desk": [2.0, 1.0, 0.5], "bed": [-1.0, 3.0, 0.0], "door": [4.0, -2.0, 2.5]}
PRED3 = {"lamp": [0.3, 0.1, 0.0], "desk": [2.2, 0.8, 0.4], "bed": [-1.3, 2.6, 0.3], "door": [3.5, -2.2, 2.0]}


def edge(pred: dict, ref: dict, config=None) -> float:
    r = score(completion(pred), ref_of(ref, graph_scale=50.0), config)
    return r.components["graph_edge"]


def moved(pred: dict, matrix: np.ndarray, shift: np.ndarray) -> dict:
    return {k: (matrix @ np.array(v) + shift).tolist() for k, v in pred.items()}


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(st.floats(-20, 20), min_size=3, max_size=3), st.booleans())
def test_edge_invariant_to_rotation_translation_mirror_3d(seed, shift, mirror):
    matrix = Rotation.random(random_state=seed).as_matrix()
    if mirror:
        matrix = matrix @ np.diag([1.0, 1.0, -1.0])
    base = edge(PRED3, REF3)
    assert edge(moved(PRED3, matrix, np.array(shift)), REF3) == pytest.approx(base, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.floats(-np.pi, np.pi), st.lists(st.floats(-20, 20), min_size=2, max_size=2))
def test_signed_planar_invariant_to_planar_rotation_not_mirror(angle, shift):
    ref = {k: v[:2] for k, v in REF3.items()}
    pred = {k: v[:2] for k, v in PRED3.items()}
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    base = edge(pred, ref, SIGNED)
    assert edge(moved(pred, rot, np.array(shift)), ref, SIGNED) == pytest.approx(base, abs=1e-9)
    mirrored = moved(pred, rot @ np.diag([1.0, -1.0]), np.array(shift))
    assert edge(mirrored, ref, SIGNED) < base - 0.05
    assert edge(mirrored, ref) == pytest.approx(edge(pred, ref), abs=1e-9)


def test_compiled_assignment_is_scipys_ties_included():
    """The spec's assignment is the one scipy returns; the compiled port must return the same pairs on
    tie-heavy matrices of every shape (small integers make equal costs common)."""
    from scipy.optimize import linear_sum_assignment

    from reward_service.scoring.graph_kernels import lsap_kernel

    rng = np.random.default_rng(3)
    for trial in range(20000):
        n, m = rng.integers(1, 7, size=2)
        if trial % 3 == 0:
            cost = rng.integers(0, 3, size=(n, m)).astype(float)
        elif trial % 3 == 1:
            cost = rng.integers(0, 10, size=(n, m)) / 4.0
        else:
            cost = np.sqrt(rng.integers(0, 5, size=(n, m)).astype(float))
        rows, cols = lsap_kernel(cost)
        expected_rows, expected_cols = linear_sum_assignment(cost)
        assert rows.tolist() == expected_rows.tolist() and cols.tolist() == expected_cols.tolist(), cost


def test_compiled_assignment_of_one_row_or_column_is_scipys():
    """lsap answers a single row or column without the path search: the same pair as scipy, ties included."""
    from scipy.optimize import linear_sum_assignment

    from reward_service.scoring.graph_kernels import lsap_kernel

    rng = np.random.default_rng(5)
    for trial in range(5000):
        k = int(rng.integers(1, 9))
        shape = (1, k) if trial % 2 else (k, 1)
        cost = rng.integers(0, 3, size=shape).astype(float) if trial % 4 < 2 else rng.random(shape) * 10
        rows, cols = lsap_kernel(cost)
        expected_rows, expected_cols = linear_sum_assignment(cost)
        assert rows.tolist() == expected_rows.tolist() and cols.tolist() == expected_cols.tolist(), cost


def test_explain_gives_the_parsed_graph_and_the_correspondence():
    ref = ref_of({"frames": {"0": {"cup_1": [0, 0], "cup_2": [1, 0]}, "5": {"cup_1": [2, 2]}}}, graph_scale=10)
    text = completion({"frames": {"0": {"cup 7": [1, 0], "cup 3": [0, 0]}, "9": {"cup": [2, 2]}}})
    r = score(text, ref, explain=True)
    pairs = {(c["frame"], c["pred_frame"], c["reference"], c["prediction"]) for c in r.diagnostics["correspondence"]}
    assert pairs == {(0, 0, "cup_1", "cup 3"), (0, 0, "cup_2", "cup 7"), (5, 9, "cup_1", "cup")}
    assert [n["name"] for n in r.diagnostics["graph"]["frames"]["0"]] == ["cup 7", "cup 3"]
    assert r.diagnostics["answer"] == "A"
    assert "correspondence" not in score(text, ref).diagnostics


def test_frames_out_of_order_and_repeated_numbers_come_out_sorted_later_key_winning():
    g = read_graph(loads_relaxed(
        '{"frames": {"t8": {"a": [8, 0]}, "2": [{"name": "b", "pos": [2, 0]}, {"name": "c", "pos": [2, 1]}],'
        ' "frame_8": {"d": [8, 1], "e": [8, 2]}, "x": {"f": [0, 0]}, "5": 3}}'))
    assert g.numbers == [2, 8] and g.sizes == [2, 2] and g.names == ["b", "c", "d", "e"]
    assert {f: [(n.name, n.pos) for n in nodes] for f, nodes in g.frames.items()} == {
        2: [("b", (2.0, 0.0)), ("c", (2.0, 1.0))], 8: [("d", (8.0, 1.0)), ("e", (8.0, 2.0))]}


def test_reference_positions_are_its_own_floats():
    value = {"a": [0, 1], "b": [2, 3]}
    g = read_graph(value, strict=True)
    value["a"][0] = 5
    assert g.positions == [[0.0, 1.0], [2.0, 3.0]] and all(type(x) is float for p in g.positions for x in p)


def test_reference_frames_naming_one_number_twice_are_invalid():
    from reward_service.errors import GraphError

    with pytest.raises(GraphError, match="two frame keys name frame 8"):
        read_graph({"frames": {"8": {"a": [0, 0]}, "2": {"a": [1, 0]}, "frame_8": {"a": [2, 0]}}}, strict=True)
    assert read_graph({"frames": {"8": {"a": [0, 0]}, "2": {"a": [1, 0]}}}, strict=True).numbers == [2, 8]


def test_a_plan_remembers_the_category_of_each_predicted_name_and_forgets_past_its_bound(monkeypatch):
    reference = read_graph({"Chair 1": [0, 0], "chair_2": [1, 0], "table": [3, 0]}, strict=True)
    plan = graph_reward._plan(reference, None, "unsigned")
    names = ["chair#7", "Table", "lamp", "chair#7"]
    assert graph_reward._category_ids(plan, names) == [0, 1, -1, 0]  # lamp: no such category in the reference
    assert plan.name_ids == {"chair#7": 0, "Table": 1, "lamp": -1}
    assert graph_reward._category_ids(plan, ["lamp", "Table"]) == [-1, 1]  # from what it remembers
    monkeypatch.setattr(graph_reward, "_MAX_NAMES", 2)
    assert graph_reward._category_ids(plan, ["chair_9"]) == [0]
    assert plan.name_ids == {"chair_9": 0}  # over the bound: forgotten, then remembered afresh
