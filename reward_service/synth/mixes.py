"""The standard mix of design.md, worst-case items at every limit of reward-spec section 4, JSONL files."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from reward_service.graph import MAX_FRAMES, MAX_GRAPH_BYTES, MAX_NODES
from reward_service.scoring.reference import MAX_TRACK_FRAMES, TASK_TYPES
from reward_service.scoring.total import MAX_ANSWER_CHARS, MAX_TRACK_ANSWER_CHARS
from reward_service.synth.common import _base, _r2, _shuffled
from reward_service.synth.completions import make_completion
from reward_service.synth.faults import LARGE_KINDS, MAX_COMPLETION_CHARS, applicable_kinds
from reward_service.synth.render import _compose, _frames_of, _graph_text, _pad, _render
from reward_service.synth.scenes import Scene, generate_scene
from reward_service.synth.tasks import Task, generate_task

GROUP_SIZE = 8


# design.md's standard mix: 60% exact or close, 25% noisy, 15% malformed or adversarial.
# An item's grade says how good its completion is ("faulty" ones are graded "malformed:<kind>" or
# "adversarial:<kind>"); it is not make_completion's `quality`, whose values differ, hence the name.
MIX_GRADES = (("exact", 0.30), ("close", 0.30), ("noisy", 0.25), ("faulty", 0.15))


def _item(item_id: str, group_id: str, completion: str, reference: dict[str, Any], num_tokens: int) -> dict[str, Any]:
    """An item of api.md's /v1/rewards request, ready to post as it is."""
    return {"id": item_id, "group_id": group_id, "completion": completion, "reference": reference,
            "num_tokens": num_tokens}


def _mix_labels(rng: np.random.Generator, n: int) -> list[str]:
    """Exact counts by largest remainder, then shuffled: the proportions hold for every n, not on average."""
    raw = [n * share for _, share in MIX_GRADES]
    counts = [math.floor(x) for x in raw]
    for i in sorted(range(len(raw)), key=lambda i: counts[i] - raw[i])[: n - sum(counts)]:
        counts[i] += 1
    labels = [name for (name, _), c in zip(MIX_GRADES, counts, strict=True) for _ in range(c)]
    return [labels[int(i)] for i in rng.permutation(n)]


def _mix_task(rng: np.random.Generator, task_type: str, with_graph: bool) -> Task:
    """A task whose graph text leaves room for reasoning within 4 KB (12 nodes x 8 frames x 3D may not)."""
    for _ in range(10):
        task = generate_task(rng, task_type, with_graph)
        if len(json.dumps(task.scene.graph())) <= 2400:  # graph faults use it even without a reference graph
            return task
    return generate_task(rng, task_type, with_graph, generate_scene(rng, n_frames=1, moving=False))


def _mix_completion(rng: np.random.Generator, task: Task, label: str) -> tuple[str, str]:
    if label == "exact":
        return make_completion(rng, task, "exact"), "exact"
    if label in ("close", "noisy"):
        noise = float(rng.uniform(0.01, 0.05) if label == "close" else rng.uniform(0.1, 0.5))
        return make_completion(rng, task, "noisy", noise=noise), label
    quality = "malformed" if rng.random() < 0.5 else "adversarial"
    kinds = applicable_kinds(quality, task.task_type)
    weights = np.array([0.1 if k in LARGE_KINDS else 1.0 for k in kinds])  # large ones stay rare
    kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
    return make_completion(rng, task, quality, kind=kind), f"{quality}:{kind}"


def labelled_mix(n: int, seed: int = 0) -> list[tuple[dict[str, Any], str]]:
    """`standard_mix(n, seed)`'s items, each with its grade: "exact", "close" (noise <= 0.05), "noisy"
    (0.1 to 0.5), "malformed:<kind>" or "adversarial:<kind>"."""
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = np.random.default_rng(seed)
    labels = _mix_labels(rng, n)
    items: list[tuple[dict[str, Any], str]] = []
    for g in range(math.ceil(n / GROUP_SIZE)):
        task = _mix_task(rng, TASK_TYPES[g % len(TASK_TYPES)], with_graph=(g // len(TASK_TYPES)) % 2 == 0)
        group_id = f"mix{seed}-g{g:05d}"
        for r in range(min(GROUP_SIZE, n - g * GROUP_SIZE)):
            completion, grade = _mix_completion(rng, task, labels[g * GROUP_SIZE + r])
            tokens = max(1, round(len(completion) / float(rng.uniform(3.0, 4.5))))  # ~4 characters a token
            items.append((_item(f"{group_id}-r{r}", group_id, completion, dict(task.reference), tokens), grade))
    return items


def standard_mix(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` items in GRPO groups of 8 sharing a reference, ready to post to /v1/rewards; task types cycle,
    graphs on every other round. Their grades: `labelled_mix`."""
    return [item for item, _ in labelled_mix(n, seed)]


def _fill(text: str, size: int) -> str:
    """Pad JSON text with spaces after its first character up to exactly `size` bytes."""
    missing = size - len(text.encode())
    if missing < 0:
        raise ValueError(f"text of {len(text.encode())} bytes does not fit in {size}")
    return text[0] + " " * missing + text[1:]


def _join_to(tokens: Sequence[str], n: int, last: str) -> str:
    """Tokens cycled and space-separated, ending with `last`, exactly n characters (extra inner spaces)."""
    words: list[str] = []
    size = len(last)
    while size + len(tokens[len(words) % len(tokens)]) + 1 <= n:
        words.append(tokens[len(words) % len(tokens)])
        size += len(words[-1]) + 1
    if not words:
        return last
    return words[0] + " " * (n - size + 1) + " ".join([*words[1:], last])


Case = tuple[str, str, dict[str, Any]]  # name, completion, reference


def _worst_graphs(rng: np.random.Generator) -> list[Case]:
    """The biggest graphs (16 frames x 24 nodes, 3D), graph text at the byte limit, completions at theirs."""
    cases: list[Case] = []
    big: dict[str, Task] = {}
    # One category is the hardest assignment (24 x 24 per frame); the shuffled prediction uses bare,
    # repeated names, so only positions can pair the nodes.
    for label, pool in (("one-category", ("chair",)), ("mixed", ("chair", "table", "lamp", "person"))):
        scene = generate_scene(rng, MAX_NODES, MAX_FRAMES, 3, True, setting="indoor", categories=pool)
        ref: dict[str, Any] = {"task_type": "numerical", "answer": MAX_NODES}
        ref.update(graph=scene.graph(), graph_scale=scene.graph_scale)
        big[label] = task = Task(ref, "How many objects are there?", scene)
        cases.append((f"graph-16x24-{label}-exact", _render(rng, task, "24", json.dumps(ref["graph"])), ref))
        frames = [(k, _shuffled(rng, [(_base(n), [_r2(v + rng.normal(0, 0.3)) for v in p]) for n, p in ns]))
                  for k, ns in _frames_of(ref["graph"])]  # fmt: skip
        cases.append((f"graph-16x24-{label}-shuffled", _render(rng, task, "24", _graph_text(frames)), ref))

    # Full-precision positions, then spaces inside the JSON up to (or just past) the byte limit.
    task = big["one-category"]
    precise = [(k, [(n, [float(v) + float(rng.normal(0, 0.05)) for v in p]) for n, p in ns])
               for k, ns in _frames_of(task.reference["graph"])]  # fmt: skip
    for name, style, size in (("json-just-under", "json", MAX_GRAPH_BYTES - 8),
                              ("relaxed-just-under", "relaxed", MAX_GRAPH_BYTES - 8),
                              ("json-just-over", "json", MAX_GRAPH_BYTES + 1)):  # fmt: skip
        graph = _fill(_graph_text(precise, style), size)
        cases.append((f"graph-text-{name}-32KiB", _render(rng, task, "24", graph), task.reference))

    # Long reasoning plus the biggest graph at the character limit; then reasoning full of near-tags,
    # which must not cost a scanner more than linear time.
    task = big["mixed"]
    intro, graph = f"The question asks: {task.question}", json.dumps(task.reference["graph"])
    room = MAX_COMPLETION_CHARS - len(_compose(intro, graph, "", "24"))
    near = ("<thin", "<answe", "</answe", "<grap", "</grap", "</think", "<answer", "think>", "answer>", "<", "</")
    for name, reasoning in (("completion-just-under-limit", _pad(rng, task.scene, room - 1, exact=True)),
                            ("completion-just-over-limit", _pad(rng, task.scene, room + 1, exact=True)),
                            ("completion-near-tags", _join_to(near, room - 1, "done."))):  # fmt: skip
        cases.append((name, _compose(intro, graph, reasoning, "24"), task.reference))
    return cases


def _worst_answers(rng: np.random.Generator, scene: Scene) -> list[Case]:
    """Answers at the size limits: numbers, signs, letters, prefixes; track_iou at 256 frames."""
    num: dict[str, Any] = {"task_type": "numerical", "answer": 4.0}
    mc: dict[str, Any] = {"task_type": "multiple_choice", "answer": "B", "options": ["left", "right", "front", "back"]}
    tem: dict[str, Any] = {"task_type": "temporal_iou", "answer": [4.0, 8.0]}
    box: dict[str, Any] = {"task_type": "box_iou", "answer": [1.0, 1.0, 0.0, 3.0, 3.0, 2.0]}
    soup = ("1,234.5", "-0.5e-3", "x1=12", "4s-8s", "0,500", "[-3,", "4]", ".5", "5.", "12.5-17", "2,000,000")
    answers: list[tuple[str, dict[str, Any], str]] = [
        ("answer-numbers", num, _join_to(soup, 1023, "9")),
        ("answer-same-value", num, _join_to(("4.0", "4", "4.00", "4e0", "40e-1", "0.4e1", "m"), 1023, "4")),  # reads 4
        ("answer-signs", num, _join_to(("-.-1e-e1-.5--3e+", "1e1e1e1e1e1", "--.--.5", "+-+-1"), 1023, "1")),
        ("answer-letters", mc, _join_to(("B,", "A", "or", "C", "and", "D", "&", "A", "/", "B"), 1023, "C")),
        ("answer-prefixes", mc, _join_to(("answer:", "The answer is", "option :"), 1023, "**B**")),  # reads B
        ("answer-wrapped", mc, "**" * 255 + "(B)" + "**" * 255),  # 1,023 characters that read B
        ("answer-at-limit", num, "4.0" + " " * (MAX_ANSWER_CHARS - 4) + "m"),  # 1,024: still read
        ("answer-over-limit", num, "4.0" + " " * (MAX_ANSWER_CHARS - 3) + "m"),  # 1,025: too large
        ("temporal-numbers", tem, _join_to(("4.0", "-", "8.0", "s,", "[0,100]"), 1023, "8")),
        ("box-numbers", box, _join_to(("1", "1", "0", "3,", "3", "2"), 1023, "2")),
    ]
    boxes: dict[str, list[float]] = {}
    for f in range(MAX_TRACK_FRAMES):
        x, y = float(rng.uniform(0, 560)), float(rng.uniform(0, 400))
        boxes[str(8 * f)] = [_r2(x), _r2(y), _r2(x + rng.uniform(10, 80)), _r2(y + rng.uniform(10, 80))]
    track: dict[str, Any] = {"task_type": "track_iou", "answer": boxes}
    guess = {f"frame_{k}": [float(v) + float(rng.normal(0, 3)) for v in b] for k, b in boxes.items()}
    answers += [
        ("track-256-frames-just-under-limit", track, _fill(json.dumps(guess), MAX_TRACK_ANSWER_CHARS - 1)),
        ("track-257-frames", track, json.dumps({str(8 * f): [1.0, 1.0, 9.0, 9.0] for f in range(257)})),
        ("track-deep-nesting", track, '{"0": ' + "[" * 16_000 + "]" * 16_000 + "}"),
    ]
    return [(name, _render(rng, Task(ref, "", scene), answer, None), ref) for name, ref, answer in answers]


def _worst_tags_and_graphs(rng: np.random.Generator, task: Task) -> list[Case]:
    """Tag bombs (the classic quadratic case of a non-greedy regex) and graph texts to refuse cheaply."""
    letter, think = task.reference["answer"], "<think>\nLet me think.\n</think>\n"
    cases = {
        "open-answer-tags": think + "<answer>" * 32_000,
        "open-answer-tags-closed-once": think + "<answer>" * 30_000 + f"{letter}</answer>",
        "open-think-tags": "<think>" * 32_000 + f"\n<answer>{letter}</answer>",
        "open-graph-tags": "<think>\n" + "<graph>" * 32_000 + f"\n</think>\n<answer>{letter}</answer>",
        "answer-blocks-14000": think + f"<answer>{letter}</answer>" * 14_000,
        "closing-tags-only": "</answer></think></graph>" * 10_000,
    }
    chairs = [("chair", [float(i)] + [0.0] * (task.scene.dim - 1)) for i in range(MAX_NODES)]
    graphs = {
        "graph-deep-lists": "[" * 16_000 + "]" * 16_000,
        "graph-deep-objects": '{"a": ' * 4_500 + "1" + "}" * 4_500,
        "graph-unterminated-string": "{'a': '" + "x" * 32_000,
        "graph-24-repeated-keys": _graph_text([(None, chairs)]),
    }
    cases |= {name: _render(rng, task, letter, graph) for name, graph in graphs.items()}
    return [(name, completion, task.reference) for name, completion in cases.items()]


def worst_case_items() -> list[dict[str, Any]]:
    """Inputs at (or just past) every limit of reward-spec section 4, for the 10 ms worst-case bar."""
    rng = np.random.default_rng(20_251_124)
    small = generate_task(rng, "multiple_choice", with_graph=True)
    cases = _worst_graphs(rng) + _worst_answers(rng, small.scene) + _worst_tags_and_graphs(rng, small)
    return [_item(f"worst-{name}", "worst-case", text, ref, max(1, len(text) // 4))
            for name, text, ref in cases]  # fmt: skip


def write_jsonl(path: str | os.PathLike[str], items: Iterable[dict[str, Any]]) -> int:
    """Write items one JSON object a line; returns how many were written."""
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for item in items:
            out.write(json.dumps(item) + "\n")
            count += 1
    return count
