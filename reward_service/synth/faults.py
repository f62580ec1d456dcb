"""Malformed and adversarial completions: format and graph faults, and the hacks a policy might try
(each must score no more than an honest wrong answer)."""

from __future__ import annotations

import json
import math

import numpy as np

from reward_service.graph import MAX_FRAMES, MAX_GRAPH_BYTES, MAX_NODES
from reward_service.parsing.relaxed_json import MAX_DEPTH
from reward_service.scoring.config import DEFAULT_REWARD_CONFIG
from reward_service.scoring.reference import OPTION_LETTERS as LETTERS
from reward_service.scoring.reference import TASK_TYPES
from reward_service.scoring.total import MAX_ANSWER_CHARS, MAX_TRACK_ANSWER_CHARS
from reward_service.synth.common import _num, _pick, _r2, _shuffled
from reward_service.synth.render import (
    _FILLER,
    Frames,
    _exact_graph_text,
    _format_answer,
    _frames_of,
    _graph_text,
    _invented,
    _pad,
    _render,
    _shift_box,
    _wrong_value,
)
from reward_service.synth.scenes import Scene
from reward_service.synth.tasks import Task

FORMAT_FAULTS = (
    "missing_think", "missing_answer", "text_after_answer", "text_before_think", "two_think_blocks",
    "unclosed_think", "unclosed_answer", "empty_answer", "uppercase_tags", "misspelled_tags",
)  # fmt: skip
GRAPH_FAULTS = ("graph_unparsable", "graph_twice", "unclosed_graph")
MALFORMED_KINDS = FORMAT_FAULTS + GRAPH_FAULTS
# Hacks that carry the right answer inside an ambiguous or oversize answer: answer reward must be 0.
ANSWER_HACKS = ("multiple_answer_blocks", "answer_list", "all_options", "number_range", "stuffed_answer",
                "huge_answer", "many_open_answer_tags")  # fmt: skip
# Hacks on the graph (with an honest wrong answer): graph rewards must be 0.
GRAPH_HACKS = ("graph_outside_think", "deep_nesting", "nonfinite_positions", "too_many_nodes",
               "too_many_frames", "graph_too_large")  # fmt: skip
ADVERSARIAL_KINDS = (*ANSWER_HACKS, *GRAPH_HACKS, "oversize_completion")
# Kinds allowed past the 1-4 KB completion size (standard_mix keeps them rare).
LARGE_KINDS = frozenset({"oversize_completion", "graph_too_large", "many_open_answer_tags", "huge_answer",
                         "too_many_frames"})  # fmt: skip
# Kinds that only make sense for some task types; every other kind applies to all five.
KIND_TASK_TYPES: dict[str, tuple[str, ...]] = {"all_options": ("multiple_choice",), "number_range": ("numerical",)}

# The scorer's limits (reward-spec section 4), taken from where it defines them: worst cases sit on them.
MAX_COMPLETION_CHARS = DEFAULT_REWARD_CONFIG.max_completion_chars



def applicable_kinds(quality: str, task_type: str) -> tuple[str, ...]:
    kinds = MALFORMED_KINDS if quality == "malformed" else ADVERSARIAL_KINDS
    return tuple(k for k in kinds if task_type in KIND_TASK_TYPES.get(k, TASK_TYPES))


def _broken_graph(rng: np.random.Generator, graph: str, scene: Scene) -> str:
    """Graph text that neither JSON nor the spec's relaxed JSON can read."""
    choice = int(rng.integers(4))
    if choice == 0:
        return graph[: len(graph) // 2]  # cut off mid-way, as when generation stops early
    if choice == 1:
        return "; ".join(f"{n} at ({p[0]}, {p[1]})" for n, p in scene.positions[scene.frames[0]].items())
    if choice == 2:
        return f"nodes = {graph}"  # code, not data: nothing is ever evaluated
    return graph.replace("]", ")", 1)  # a list opened with [ must close with ]


def _malformed(rng: np.random.Generator, task: Task, kind: str) -> str:
    """A completion with exactly one format fault; the content is otherwise the exact one."""
    answer = _format_answer(rng, task, task.reference["answer"])
    graph = _exact_graph_text(task)
    if kind in GRAPH_FAULTS and graph is None:  # the fault needs a graph block to break
        graph = json.dumps(task.scene.graph())
    if kind == "graph_unparsable" and graph is not None:
        graph = _broken_graph(rng, graph, task.scene)
    text = _render(rng, task, answer, graph)
    before_answer = text[: text.index("<answer>")]
    if kind == "missing_think":
        return text.replace("<think>\n", "", 1).replace("\n</think>", "", 1)
    if kind == "missing_answer":
        return before_answer.rstrip()
    if kind == "text_after_answer":
        return f"{text}\n{_pick(rng, _FILLER)}"
    if kind == "text_before_think":
        return f"Sure! {_pick(rng, _FILLER)}\n{text}"
    if kind == "two_think_blocks":
        return text.replace("</think>\n", f"</think>\n<think>\n{_pick(rng, _FILLER)}\n</think>\n", 1)
    if kind == "unclosed_think":
        return text.replace("\n</think>", "", 1)
    if kind == "unclosed_answer":
        return text.removesuffix("</answer>")
    if kind == "empty_answer":
        return before_answer + "<answer>" + _pick(rng, ("", " ", "\n")) + "</answer>"
    if kind == "uppercase_tags":
        for tag in ("think", "answer", "graph"):
            text = text.replace(f"<{tag}>", f"<{tag.upper()}>").replace(f"</{tag}>", f"</{tag.upper()}>")
        return text
    if kind == "misspelled_tags":
        return text.replace("<think>", "<thinking>").replace("</think>", "</thinking>")
    if kind == "graph_twice":  # a second, smaller block: the fault is the count, not the size
        second = _graph_text([(None, _frames_of(task.scene.graph())[0][1][:3])])
        return text.replace("</graph>\n", f"</graph>\n{_pick(rng, _FILLER)}\n<graph>\n{second}\n</graph>\n", 1)
    if kind == "unclosed_graph":
        return text.replace("\n</graph>", "", 1)
    return text  # graph_unparsable: the fault is already in the graph text


def _hedged_answer(rng: np.random.Generator, task: Task, kind: str) -> str:
    """An answer that lists or brackets the truth instead of committing to it."""
    ref, right = task.reference, _format_answer(rng, task, task.reference["answer"], canonical=True)
    wrong = _format_answer(rng, task, _wrong_value(rng, task), canonical=True)
    y, kind_t = ref["answer"], task.task_type
    letters = list(LETTERS[: len(ref.get("options", LETTERS))])
    if kind == "all_options":
        return _pick(rng, (", ", " / ", " or ", " & ")).join(letters)
    if kind == "number_range":
        lo, hi = _num(_r2(y * float(rng.uniform(0.4, 0.9)))), _num(_r2(y * float(rng.uniform(1.1, 1.8))))
        return _pick(rng, (f"{lo} - {hi}", f"{lo}-{hi}", f"between {lo} and {hi}", f"{lo} to {hi} {task.unit}".strip()))
    if kind == "answer_list":
        first, second = _shuffled(rng, [right, wrong])
        if kind_t == "multiple_choice":
            wrap = _pick(rng, ("{}", "({})"))
            return wrap.format(first) + _pick(rng, (" or ", ", ", "/", " and ", " & ", " OR ")) + wrap.format(second)
        if kind_t == "track_iou":  # a list of two tracks is not an object: reads as nothing
            return f"[{first}, {second}]"
        return f"{first} or {second}"
    # stuffed_answer: every plausible number (and letter), the truth among them
    if kind_t == "multiple_choice":
        return ", ".join(letters) + " " + " ".join(str(i) for i in range(1, 10))
    if kind_t == "numerical":
        values = range(21) if isinstance(y, int) else sorted({_r2(y * k / 8) for k in range(1, 25)})
        return " ".join(_num(v) for v in values)
    if kind_t == "temporal_iou":
        return " ".join(_num(v / 2) for v in range(int(2 * y[1]) + 6))
    if kind_t == "box_iou":
        return " ".join(_num(v) for v in [*y, *_wrong_value(rng, task), *y])
    return json.dumps({k: [*box, *_shift_box(rng, box)] for k, box in y.items()})  # 8 numbers per frame


def _huge_answer(rng: np.random.Generator, task: Task) -> str:
    """The right answer made too long to read: reads right but for the spec's answer size limit."""
    right = task.reference["answer"]
    if task.task_type == "track_iou":  # a perfectly parsable object, inflated with indentation
        indent = 8
        while len(text := json.dumps(right, indent=" " * indent)) <= MAX_TRACK_ANSWER_CHARS:
            indent *= 2
        return text
    head = _format_answer(rng, task, right, canonical=True) + ". "
    return head + _pad(rng, None, MAX_ANSWER_CHARS + int(rng.integers(1, 1000)) - len(head))


def _hacked_graph(rng: np.random.Generator, task: Task, kind: str) -> str:
    scene = task.scene
    frames = _frames_of(task.reference.get("graph") or scene.graph())
    nodes = frames[0][1]
    if kind == "deep_nesting":  # one position buried under more levels than the spec's 64
        depth = int(rng.integers(MAX_DEPTH + 1, 4 * MAX_DEPTH))
        deep = "[" * depth + ", ".join(_num(v) for v in nodes[0][1]) + "]" * depth
        rest = "".join(f", {json.dumps(n)}: {json.dumps(p)}" for n, p in nodes[1:])
        return f'{{"nodes": {{{json.dumps(nodes[0][0])}: {deep}{rest}}}}}'
    if kind == "nonfinite_positions":  # every node has a coordinate the spec drops (NaN, infinite, > 1e6)
        bad = (math.nan, math.inf, -math.inf, 1e308, 2.5e6, -1e7)
        poisoned: Frames = []
        for k, ns in frames:
            poisoned.append((k, [(n, [_pick(rng, bad) if i == 0 else v for i, v in enumerate(p)]) for n, p in ns]))
        return _graph_text(poisoned)
    if kind == "too_many_nodes":
        count = int(rng.integers(MAX_NODES + 1, MAX_NODES + 17))
        extra = [_invented(rng, scene, 100 + i) for i in range(count - len(nodes))]
        return _graph_text([(None, nodes + extra)], "compact")
    if kind == "too_many_frames":
        count = int(rng.integers(MAX_FRAMES + 1, MAX_FRAMES + 9))
        return _graph_text([(str(4 * i), frames[min(i, len(frames) - 1)][1]) for i in range(count)], "compact")
    # graph_too_large: the true graph plus a comment that pushes the text past 32 KiB
    text = _graph_text(frames)
    comment = _pad(rng, None, MAX_GRAPH_BYTES - len(text) + int(rng.integers(1, 4000)))
    return f'{text[:-1]}, "comment": {json.dumps(comment)}}}'


def _adversarial(rng: np.random.Generator, task: Task, kind: str) -> str:
    right = _format_answer(rng, task, task.reference["answer"], canonical=True)
    wrong = _format_answer(rng, task, _wrong_value(rng, task), canonical=True)
    graph = _exact_graph_text(task)
    if kind == "multiple_answer_blocks":
        answers = _shuffled(rng, [right, wrong] + ([wrong] if rng.random() < 0.5 else []))
        extra = "".join(f"\n<answer>{a}</answer>" for a in answers[1:])
        return _render(rng, task, answers[0], graph, size=int(rng.integers(1100, 3900)) - len(extra)) + extra
    if kind in ("answer_list", "all_options", "number_range", "stuffed_answer"):
        return _render(rng, task, _hedged_answer(rng, task, kind), graph)
    if kind == "huge_answer":
        return _render(rng, task, _huge_answer(rng, task), graph)
    if kind == "many_open_answer_tags":  # also a ReDoS probe: thousands of openings, no closing
        return _render(rng, task, right, graph).removesuffix("</answer>") + "<answer>" * int(rng.integers(1000, 4000))
    if kind == "oversize_completion":
        return _render(rng, task, right, graph, size=MAX_COMPLETION_CHARS + int(rng.integers(1, 4096)))
    if kind == "graph_outside_think":
        block = f"<graph>\n{json.dumps(task.scene.graph())}\n</graph>"
        text = _render(rng, task, wrong, None, size=int(rng.integers(1100, 3900)) - len(block))  # stays in 1-4 KB
        where = int(rng.integers(4))
        if where == 0:
            return text.replace("</think>\n<answer>", f"</think>\n{block}\n<answer>", 1)
        if where == 1:
            return f"{text}\n{block}"
        return f"{block}\n{text}" if where == 2 else text.replace("</answer>", f"\n{block}</answer>")
    if kind in GRAPH_HACKS:
        return _render(rng, task, wrong, _hacked_graph(rng, task, kind))
    raise ValueError(f"unknown adversarial kind {kind!r}")
