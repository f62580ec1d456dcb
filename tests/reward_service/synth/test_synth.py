"""The synthetic STV-style generator: determinism, the standard mix, well-formed references, and
completions that have exactly the quality (or fault) they claim.

The reward-spec rules are re-checked here by hand, independently of the scoring core, so a bug in
either shows up; the tests at the end also run the scoring core when it is importable.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from reward_service.graph import MAX_FRAMES, MAX_GRAPH_BYTES, MAX_NODES
from reward_service.graph import category as category_of
from reward_service.parsing.relaxed_json import MAX_DEPTH
from reward_service.scoring import score, validate_reference
from reward_service.scoring.reference import MAX_TRACK_FRAMES, TASK_TYPES
from reward_service.scoring.total import MAX_ANSWER_CHARS, MAX_TRACK_ANSWER_CHARS
from reward_service.synth import completions, faults, mixes, render, scenes
from reward_service.synth import tasks as synth_tasks

BLOCK = {tag: re.compile(rf"<{tag}>(.*?)</{tag}>", re.DOTALL) for tag in ("think", "answer", "graph")}
# Numbers roughly as the spec reads them: "-" is a sign only at the start or after whitespace or ([{,=:;
NUMBER = re.compile(r"(?:(?<![^\s(\[{,=:;])-)?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


# ------------------------------------------------------------------------------------------ helpers


def tasks(seed: int = 0, per_type: int = 6) -> list[synth_tasks.Task]:
    rng = np.random.default_rng(seed)
    return [synth_tasks.generate_task(rng, t, with_graph=i % 2 == 0) for t in TASK_TYPES for i in range(per_type)]


def pairs_hook(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return pairs  # keep repeated keys, as the spec reads graph text


def read_graph_nodes(text: str) -> list[list[tuple[str, Any]]]:
    """Frames of (name, position) pairs from strict JSON graph text that may repeat keys."""
    value = json.loads(text, object_pairs_hook=pairs_hook)
    obj = dict(value) if isinstance(value, list) and value and isinstance(value[0], tuple) else value
    if isinstance(obj, dict) and isinstance(obj.get("frames"), list):
        return [nodes for _, nodes in obj["frames"]]
    if isinstance(obj, dict) and "nodes" in obj:
        return [obj["nodes"]]
    return [value]


def node_names(nodes: list[Any]) -> list[str]:
    """Names from NODES read with pairs_hook: (name, position) pairs, or objects naming themselves."""
    if nodes and isinstance(nodes[0], tuple):
        return [str(name) for name, _ in nodes]
    return [str(next(v for k, v in obj if k in ("name", "id", "label"))) for obj in nodes]


def depth(text: str) -> int:
    deepest = level = 0
    for ch in text:
        level += ch in "[{("
        level -= ch in "]})"
        deepest = max(deepest, level)
    return deepest


def format_ok(text: str) -> bool:
    """reward-spec section 1, written out independently of the parser under test."""
    t = text.strip()
    if any(t.count(tag) != 1 for tag in ("<think>", "</think>", "<answer>", "</answer>")):
        return False
    m = re.fullmatch(r"<think>(.*?)</think>\s*<answer>(.*?)</answer>", t, re.DOTALL)
    return m is not None and m.group(2).strip() != ""


def think_and_answer(text: str) -> tuple[str | None, list[str]]:
    thinks = BLOCK["think"].findall(text)
    return (thinks[0] if len(thinks) == 1 else None), BLOCK["answer"].findall(text)


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_box(box: Any, sizes: tuple[int, ...]) -> None:
    assert isinstance(box, list) and len(box) in sizes and all(finite(v) for v in box), box
    k = len(box) // 2
    assert all(box[i + k] > box[i] for i in range(k)), f"max not above min: {box}"


def check_reference(ref: dict[str, Any], *, mix: bool = False) -> None:
    """Every rule reward-spec sections 2-4 set on a reference (mix: design.md's 4-12 nodes, 1-8 frames)."""
    assert set(ref) <= {"task_type", "answer", "options", "graph", "graph_scale"}
    kind, answer = ref["task_type"], ref["answer"]
    assert kind in TASK_TYPES
    if kind == "multiple_choice":
        options = ref.get("options")
        letters = "ABCDEFGHIJ"[: len(options)] if options is not None else "ABCDEFGHIJ"
        assert isinstance(answer, str) and len(answer) == 1 and answer in letters
        if options is not None:
            assert all(isinstance(o, str) for o in options) and len(set(options)) == len(options) >= 2
    else:
        assert "options" not in ref
    if kind == "numerical":
        assert finite(answer) and answer != 0  # MRA at y = 0 is all-or-nothing: the generator avoids it
    if kind == "temporal_iou":
        assert isinstance(answer, list) and len(answer) == 2 and all(finite(v) for v in answer)
        assert answer[0] <= answer[1]
    if kind == "box_iou":
        check_box(answer, (4, 6))
    if kind == "track_iou":
        assert isinstance(answer, dict) and 1 <= len(answer) <= MAX_TRACK_FRAMES
        for key, box in answer.items():
            assert re.search(r"\d", key)
            check_box(box, (4,))
    if "graph" not in ref:
        assert "graph_scale" not in ref
        return
    assert finite(ref["graph_scale"]) and ref["graph_scale"] > 0
    graph = ref["graph"]
    assert len(json.dumps(graph).encode()) <= MAX_GRAPH_BYTES
    frames = list(graph["frames"].values()) if "frames" in graph else [graph["nodes"]]
    assert all(re.search(r"\d", key) for key in graph.get("frames", {}))
    assert 1 <= len(frames) <= (8 if mix else MAX_FRAMES)
    dims = set()
    for nodes in frames:
        assert (4 if mix else 1) <= len(nodes) <= (12 if mix else MAX_NODES)
        for position in nodes.values():
            assert all(finite(v) and abs(v) <= 1e6 for v in position)
            dims.add(len(position))
    assert dims in ({2}, {3}), dims


# -------------------------------------------------------------------------------------- determinism


def test_same_seed_same_output() -> None:
    assert mixes.standard_mix(30, seed=5) == mixes.standard_mix(30, seed=5)
    assert mixes.standard_mix(30, seed=5) != mixes.standard_mix(30, seed=6)
    a, b = np.random.default_rng(9), np.random.default_rng(9)
    for quality in ("exact", "noisy", "wrong", "malformed", "adversarial"):
        ta, tb = synth_tasks.generate_task(a, "track_iou", True), synth_tasks.generate_task(b, "track_iou", True)
        assert ta.reference == tb.reference and ta.question == tb.question
        assert completions.make_completion(a, ta, quality) == completions.make_completion(b, tb, quality)
    assert mixes.worst_case_items() == mixes.worst_case_items()


def test_imports_without_service_dependencies() -> None:
    code = "import sys, reward_service.synth.mixes; print(sorted({'fastapi', 'redis', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -------------------------------------------------------------------------------------------- scenes


def test_scene_shape_and_motion() -> None:
    rng = np.random.default_rng(3)
    for moving in (False, True):
        for dim in (2, 3):
            scene = scenes.generate_scene(rng, n_objects=10, n_frames=6, dim=dim, moving=moving)
            assert scene.frames == sorted(scene.frames) and len(scene.frames) == 6
            names = scene.names
            assert len(names) == len(set(names)) == 10
            for f in scene.frames:
                assert list(scene.positions[f]) == names
                assert all(len(p) == dim and all(abs(v) <= 10 for v in p) for p in scene.positions[f].values())
            still = [n for n in names if len({scene.positions[f][n] for f in scene.frames}) == 1]
            assert (len(still) < len(names)) == moving
            assert set(scene.movers) <= set(names) and bool(scene.movers) == moving
            assert all(s < e for s, e in scene.intervals.values())
            graph = scene.graph()
            assert ("frames" in graph) == moving and ("nodes" in graph) != moving
    with pytest.raises(ValueError):
        scenes.generate_scene(rng, n_objects=25)
    with pytest.raises(ValueError):
        scenes.generate_scene(rng, n_frames=1, moving=True)


def test_instances_and_categories() -> None:
    scene = scenes.generate_scene(np.random.default_rng(0), n_objects=12, categories=("chair", "traffic-light"))
    cats = Counter(category_of(n) for n in scene.names)
    assert set(cats) == {"chair", "traffic_light"} and sum(cats.values()) == 12
    for name, category in [("Chair 2", "chair"), ("chair#2", "chair"), ("chair_2", "chair"),
                           ("traffic-light_10", "traffic_light"), ("chair_a", "chair_a"), ("TABLE", "table")]:  # fmt: skip
        assert category_of(name) == category


# ----------------------------------------------------------------------------------------- references


def test_generated_references_are_well_formed() -> None:
    for task in tasks(seed=1, per_type=20):
        check_reference(task.reference)
        assert task.question and task.scene.names


def test_mix_proportions_groups_and_references() -> None:
    n = 400
    labelled = mixes.labelled_mix(n)
    items = mixes.standard_mix(n)
    assert items == [item for item, _ in labelled]
    assert len(items) == n and len({it["id"] for it in items}) == n
    assert set(items[0]) == {"id", "group_id", "completion", "reference", "num_tokens"}  # ready to post
    labels = Counter(grade.split(":")[0] for _, grade in labelled)
    assert labels == {"exact": 120, "close": 120, "noisy": 100, "malformed": labels["malformed"],
                      "adversarial": labels["adversarial"]}  # fmt: skip
    assert labels["malformed"] + labels["adversarial"] == 60 and min(labels["malformed"], labels["adversarial"]) > 15
    types = Counter((it["reference"]["task_type"], "graph" in it["reference"]) for it in items)
    assert types == {(t, g): 40 for t in TASK_TYPES for g in (True, False)}
    groups: dict[str, list[dict[str, Any]]] = {}
    for it in items:
        groups.setdefault(it["group_id"], []).append(it)
    assert all(len(g) == mixes.GROUP_SIZE for g in groups.values())
    for group in groups.values():
        assert all(it["reference"] == group[0]["reference"] for it in group)
    for it in items:
        check_reference(it["reference"], mix=True)
        assert isinstance(it["num_tokens"], int) and 0 < it["num_tokens"] <= len(it["completion"])
    partial = mixes.standard_mix(13, seed=2)
    assert Counter(it["group_id"] for it in partial).most_common() == [(partial[0]["group_id"], 8), (partial[-1]["group_id"], 5)]


def test_mix_sizes_and_variety() -> None:
    labelled = mixes.labelled_mix(1200, seed=4)
    for it, grade in labelled:
        kind = grade.split(":")[-1]
        if kind not in faults.LARGE_KINDS:
            assert 1024 <= len(it["completion"].encode()) <= 4096, (grade, len(it["completion"]))
    kinds = Counter(grade for _, grade in labelled)
    assert len([k for k in kinds if k.startswith("malformed:")]) >= 10
    assert len([k for k in kinds if k.startswith("adversarial:")]) >= 10


# ---------------------------------------------------------------------------------------- completions


def test_exact_completions() -> None:
    rng = np.random.default_rng(5)
    for task in tasks(seed=5):
        text = completions.make_completion(rng, task, "exact")
        assert format_ok(text) and 1024 <= len(text) <= 4096
        think, answers = think_and_answer(text)
        assert think is not None and len(answers) == 1
        graphs = BLOCK["graph"].findall(think)
        if "graph" in task.reference:
            assert len(graphs) == 1 and json.loads(graphs[0]) == task.reference["graph"]
        else:
            assert "<graph>" not in text
        answer, ref = answers[0].strip(), task.reference["answer"]
        if task.task_type == "track_iou":
            assert json.loads(answer) == ref
        elif task.task_type == "multiple_choice":
            assert re.search(rf"\b{ref}\b", answer), answer
        else:
            numbers = [float(x) for x in NUMBER.findall(answer)]
            expected = [float(v) for v in (ref if isinstance(ref, list) else [ref])]
            assert numbers == expected or (not numbers and answer in render._NUMBER_WORDS), answer


def test_noisy_and_wrong_completions_stay_well_formed() -> None:
    rng = np.random.default_rng(6)
    wrong_letters = 0
    for task in tasks(seed=6, per_type=10):
        for noise in (0.02, 0.2, 0.5):
            text = completions.make_completion(rng, task, "noisy", noise=noise)
            assert format_ok(text) and 1024 <= len(text) <= 4096
            think, _ = think_and_answer(text)
            assert think is not None
            graphs = BLOCK["graph"].findall(think)
            assert len(graphs) == ("graph" in task.reference)
            if graphs and not re.search(r"[(']", graphs[0]):  # relaxed JSON is the scorer's to read
                allowed = {category_of(n) for n in scenes.SIZES}
                for nodes in read_graph_nodes(graphs[0]):
                    names = node_names(nodes)
                    assert names and all(category_of(n) in allowed for n in names)
        text = completions.make_completion(rng, task, "wrong")
        assert format_ok(text)
        if task.task_type == "multiple_choice":
            noisy = completions.make_completion(rng, task, "noisy", noise=0.2)
            wrong_letters += re.search(r"<answer>.*?([A-J])\b", noisy).group(1) != task.reference["answer"]  # type: ignore[union-attr]
    assert 3 <= wrong_letters <= 9  # probability about 3 * noise = 0.6 over 10 multiple-choice tasks


MALFORMED_CHECKS = {
    "missing_think": lambda t, th, ans: "<think>" not in t and "</think>" not in t and len(ans) == 1,
    "missing_answer": lambda t, th, ans: "<answer>" not in t and "</answer>" not in t,
    "text_after_answer": lambda t, th, ans: not t.rstrip().endswith("</answer>") and len(ans) == 1,
    "text_before_think": lambda t, th, ans: not t.lstrip().startswith("<think>") and th is not None,
    "two_think_blocks": lambda t, th, ans: t.count("<think>") == t.count("</think>") == 2,
    "unclosed_think": lambda t, th, ans: t.count("<think>") == 1 and "</think>" not in t,
    "unclosed_answer": lambda t, th, ans: t.count("<answer>") == 1 and "</answer>" not in t,
    "empty_answer": lambda t, th, ans: len(ans) == 1 and ans[0].strip() == "",
    "uppercase_tags": lambda t, th, ans: "<THINK>" in t and "<ANSWER>" in t and "<think>" not in t and not ans,
    "misspelled_tags": lambda t, th, ans: "<thinking>" in t and "<think>" not in t,
    "graph_unparsable": lambda t, th, ans: len(g := BLOCK["graph"].findall(th)) == 1 and not parses(g[0]),
    "graph_twice": lambda t, th, ans: len(BLOCK["graph"].findall(th)) == 2,
    "unclosed_graph": lambda t, th, ans: "<graph>" in th and "</graph>" not in t,
}


def parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("kind", faults.MALFORMED_KINDS)
def test_malformed_kind_has_its_fault(kind: str) -> None:
    assert set(MALFORMED_CHECKS) == set(faults.MALFORMED_KINDS)
    rng = np.random.default_rng(7)
    for task in tasks(seed=7, per_type=2):
        text = completions.make_completion(rng, task, "malformed", kind=kind)
        think, answers = think_and_answer(text)
        assert MALFORMED_CHECKS[kind](text, think, answers), text[-300:]
        assert format_ok(text) == (kind in faults.GRAPH_FAULTS)  # one fault: graph faults keep the format
        assert 1024 <= len(text) <= 4096


def answer_of(text: str) -> str:
    return BLOCK["answer"].findall(text)[0].strip()


def graph_in_think(text: str) -> str:
    think, _ = think_and_answer(text)
    assert think is not None
    return str(BLOCK["graph"].findall(think)[0])


def check_adversarial(kind: str, task: synth_tasks.Task, text: str) -> None:
    ref, ttype = task.reference, task.task_type
    if kind == "multiple_answer_blocks":
        assert text.count("<answer>") == text.count("</answer>") >= 2
    elif kind == "answer_list":
        answer = answer_of(text)
        if ttype == "multiple_choice":
            assert re.fullmatch(r"\(?[A-J]\)?\s*(,|/|&|or|and)\s*\(?[A-J]\)?", answer, re.IGNORECASE), answer
        elif ttype == "track_iou":
            assert isinstance(json.loads(answer), list)
        else:
            assert len(NUMBER.findall(answer)) == 2 * len(NUMBER.findall(json.dumps(ref["answer"])))
    elif kind == "all_options":
        assert set(re.findall(r"[A-J]", answer_of(text))) == set("ABCDEFGHIJ"[: len(ref["options"])])
    elif kind == "number_range":
        low, high = (float(x) for x in NUMBER.findall(answer_of(text)))
        assert low < ref["answer"] < high
    elif kind == "stuffed_answer":
        assert len(NUMBER.findall(answer_of(text))) >= 5
    elif kind == "huge_answer":
        limit = MAX_TRACK_ANSWER_CHARS if ttype == "track_iou" else MAX_ANSWER_CHARS
        assert len(answer_of(text)) > limit
    elif kind == "many_open_answer_tags":
        assert text.count("<answer>") >= 1000 and "</answer>" not in text
    elif kind == "graph_outside_think":
        think, _ = think_and_answer(text)
        assert text.count("<graph>") == 1 and think is not None and "<graph>" not in think
    elif kind == "deep_nesting":
        assert depth(graph_in_think(text)) > MAX_DEPTH
    elif kind == "nonfinite_positions":
        for nodes in read_graph_nodes(graph_in_think(text)):
            assert all(any(not math.isfinite(v) or abs(v) > 1e6 for v in p) for _, p in nodes)
    elif kind == "too_many_nodes":
        assert max(len(nodes) for nodes in read_graph_nodes(graph_in_think(text))) > MAX_NODES
    elif kind == "too_many_frames":
        assert len(read_graph_nodes(graph_in_think(text))) > MAX_FRAMES
    elif kind == "graph_too_large":
        assert len(graph_in_think(text).strip().encode()) > MAX_GRAPH_BYTES
    elif kind == "oversize_completion":
        assert len(text) > faults.MAX_COMPLETION_CHARS
    else:  # pragma: no cover
        raise AssertionError(f"no check for {kind}")


@pytest.mark.parametrize("kind", faults.ADVERSARIAL_KINDS)
def test_adversarial_kind_has_its_hack(kind: str) -> None:
    rng = np.random.default_rng(8)
    produced = 0
    for task in tasks(seed=8, per_type=2):
        if kind not in faults.applicable_kinds("adversarial", task.task_type):
            with pytest.raises(ValueError):
                completions.make_completion(rng, task, "adversarial", kind=kind)
            continue
        text = completions.make_completion(rng, task, "adversarial", kind=kind)
        check_adversarial(kind, task, text)
        if kind not in faults.LARGE_KINDS and kind != "oversize_completion":
            assert 1024 <= len(text) <= 4096
        produced += 1
    assert produced >= 2


def test_make_completion_rejects_unknown_arguments() -> None:
    rng = np.random.default_rng(0)
    task = synth_tasks.generate_task(rng, "numerical", True)
    for bad in ({"quality": "perfect"}, {"quality": "exact", "kind": "missing_think"},
                {"quality": "malformed", "kind": "no_such_kind"}):  # fmt: skip
        with pytest.raises(ValueError):
            completions.make_completion(rng, task, **bad)
    with pytest.raises(ValueError):
        synth_tasks.generate_task(rng, "counting", False)


# ----------------------------------------------------------------------------------------- worst cases


def test_worst_case_items_sit_at_the_limits() -> None:
    items = {it["id"].removeprefix("worst-"): it for it in mixes.worst_case_items()}
    assert len(items) == len(mixes.worst_case_items())
    for name, it in items.items():
        check_reference(it["reference"])
        over = name == "completion-just-over-limit"
        assert (len(it["completion"]) > faults.MAX_COMPLETION_CHARS) == over, name
    big = items["graph-16x24-one-category-exact"]["reference"]["graph"]["frames"]
    assert len(big) == 16 and all(len(nodes) == 24 for nodes in big.values())
    assert {category_of(n) for nodes in big.values() for n in nodes} == {"chair"}
    shuffled = read_graph_nodes(graph_in_think(items["graph-16x24-mixed-shuffled"]["completion"]))
    assert len(shuffled) == 16 and all(len(nodes) == 24 for nodes in shuffled)
    for name in ("json-just-under", "relaxed-just-under", "json-just-over"):
        size = len(graph_in_think(items[f"graph-text-{name}-32KiB"]["completion"]).encode())
        assert (MAX_GRAPH_BYTES - 64 < size <= MAX_GRAPH_BYTES) if "under" in name else size > MAX_GRAPH_BYTES
    assert len(items["completion-just-under-limit"]["completion"]) == faults.MAX_COMPLETION_CHARS - 1
    assert len(items["completion-just-over-limit"]["completion"]) == faults.MAX_COMPLETION_CHARS + 1
    assert len(items["completion-near-tags"]["completion"]) == faults.MAX_COMPLETION_CHARS - 1
    for name in ("numbers", "same-value", "signs", "letters", "prefixes", "wrapped"):
        assert len(answer_of(items[f"answer-{name}"]["completion"])) == 1023
    assert len(answer_of(items["answer-at-limit"]["completion"])) == 1024
    assert len(answer_of(items["answer-over-limit"]["completion"])) == 1025
    track = answer_of(items["track-256-frames-just-under-limit"]["completion"])
    assert len(track) == MAX_TRACK_ANSWER_CHARS - 1 and len(json.loads(track)) == 256
    assert len(json.loads(answer_of(items["track-257-frames"]["completion"]))) == 257
    bomb = items["open-answer-tags"]["completion"]
    assert bomb.count("<answer>") >= 1000 and "</answer>" not in bomb


def test_write_jsonl_round_trip(tmp_path: Path) -> None:
    items = mixes.standard_mix(10, seed=1)
    path = tmp_path / "mix.jsonl"
    assert mixes.write_jsonl(path, items) == 10
    assert [json.loads(line) for line in path.read_text().splitlines()] == items


# ------------------------------------------------------------------------------- with the scoring core


def test_every_reference_validates() -> None:
    refs = [t.reference for t in tasks(seed=10, per_type=10)]
    refs += [it["reference"] for it in mixes.standard_mix(200, seed=10) + mixes.worst_case_items()]
    for ref in refs:
        validate_reference(ref)


def test_exact_scores_the_maximum_and_wrong_scores_zero() -> None:
    rng = np.random.default_rng(11)
    for task in tasks(seed=11, per_type=10):
        result = score(completions.make_completion(rng, task, "exact"), task.reference)
        c = result.components
        assert result.status == "ok" and c["format"] == 1.0 and c["answer"] == 1.0, (c, task.reference)
        if "graph" in task.reference:
            assert c["graph_node"] == 1.0 and c["graph_edge"] in (1.0, None), c
        else:
            assert c["graph_node"] is None and c["graph_edge"] is None
        wrong = score(completions.make_completion(rng, task, "wrong"), task.reference).components
        assert wrong["format"] == 1.0 and wrong["answer"] == 0.0 and wrong["graph_node"] == c["graph_node"]


def test_noisy_completions_parse() -> None:
    rng = np.random.default_rng(12)
    for task in tasks(seed=12, per_type=8):
        for noise in (0.03, 0.3):
            result = score(completions.make_completion(rng, task, "noisy", noise=noise), task.reference)
            assert result.components["format"] == 1.0 and not result.notes, (result.notes, task.task_type)


def test_faults_earn_nothing_from_what_they_break() -> None:
    rng = np.random.default_rng(13)
    for task in tasks(seed=13, per_type=4):
        has_graph = "graph" in task.reference
        honest_wrong = score(completions.make_completion(rng, task, "wrong"), task.reference).reward
        for kind in faults.applicable_kinds("malformed", task.task_type):
            c = score(completions.make_completion(rng, task, "malformed", kind=kind), task.reference).components
            assert c["format"] == (1.0 if kind in faults.GRAPH_FAULTS else 0.0), kind
            assert c["graph_node"] == (0.0 if has_graph else None), kind
        for kind in faults.applicable_kinds("adversarial", task.task_type):
            result = score(completions.make_completion(rng, task, "adversarial", kind=kind), task.reference)
            c = result.components
            assert result.reward is not None and result.reward <= honest_wrong + 1e-9, (kind, c)
            if kind in faults.ANSWER_HACKS or kind == "oversize_completion":
                assert c["answer"] == 0.0, (kind, result.notes)
            if kind in faults.GRAPH_HACKS or kind == "oversize_completion":
                assert c["graph_node"] == c["graph_edge"] == (0.0 if has_graph else None), (kind, c)
            if kind == "oversize_completion":
                assert c["format"] == 0.0 and "completion_too_large" in result.notes
