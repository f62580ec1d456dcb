"""Completion text: answers written the ways a policy writes them, graph text (strict or relaxed), the
reasoning around them; and the answer values a completion states (exact, near, wrong)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from reward_service.parsing.numbers import NUMBER_WORDS
from reward_service.scoring.reference import OPTION_LETTERS as LETTERS
from reward_service.synth.common import _base, _dist, _num, _pick, _r2, _shuffled
from reward_service.synth.scenes import INDOOR, OUTDOOR, Scene
from reward_service.synth.tasks import Task

Nodes = list[tuple[str, list[float]]]
Frames = list[tuple[str | None, Nodes]]  # (frame key, nodes); one (None, nodes) for a static graph

_NUMBER_WORDS = tuple(NUMBER_WORDS)  # "zero" to "twenty", in order
# Digit-free sentences: padding that never adds a number or a letter list to an answer it lands in.
_FILLER = (
    "Let me go through the frames one by one before answering.",
    "I will build a map of the scene first and check it against the question.",
    "The camera moves slowly, so positions in neighbouring frames should agree.",
    "Objects of the same kind are numbered from left to right in the first frame.",
    "Distances between objects matter more here than their absolute coordinates.",
    "Nothing else in the scene seems relevant to this question.",
    "Heights are measured from the floor, which looks flat.",
    "Some objects are partly hidden in later frames, which makes them harder to place.",
    "I should double-check the layout before committing to an answer.",
)
_BARE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")



# --------------------------------------------------------------------------------------- answer values


def _format_answer(rng: np.random.Generator, task: Task, value: Any, canonical: bool = False) -> str:
    """Write an answer value the way a policy might; every form reads back as exactly `value`."""
    kind = task.task_type
    if kind == "multiple_choice":
        option = task.reference.get("options", [""] * 10)[LETTERS.index(value)]
        forms = [value, f"({value})", f"{value}. {option}", f"Answer: {value}", f"**{value}**",
                 f"The answer is {value}."]  # fmt: skip
    elif kind == "numerical":
        text = _num(value)
        forms = [text, f"{text} {task.unit}".strip(), f"about {text} {task.unit}".strip()]
        if isinstance(value, int) and 0 <= value <= 20:
            forms.append(_NUMBER_WORDS[value])
    elif kind == "temporal_iou":
        s, e = (_num(v) for v in value)
        forms = [f"[{s}, {e}]", f"{s} - {e} s", f"from {s} s to {e} s", f"{s}s-{e}s"]
    elif kind == "box_iou":
        forms = ["[" + ", ".join(_num(v) for v in value) + "]"]
    else:
        forms = [json.dumps(value)]
    return forms[0] if canonical or rng.random() < 0.5 else _pick(rng, forms)


def _jitter_box(rng: np.random.Generator, box: Sequence[float], noise: float) -> list[float]:
    k = len(box) // 2
    lows, highs = [], []
    for a, b in zip(box[:k], box[k:], strict=True):
        lo, hi = sorted(_r2(v + noise * (b - a) * float(rng.normal())) for v in (a, b))
        lows.append(lo)
        highs.append(hi if hi > lo else _r2(lo + 0.01))  # still well formed: max above min
    return lows + highs


def _noisy_value(rng: np.random.Generator, task: Task, noise: float) -> Any:
    y = task.reference["answer"]
    kind = task.task_type
    if kind == "multiple_choice":
        letters = LETTERS[: len(task.reference.get("options", LETTERS))]
        return _pick(rng, [c for c in letters if c != y]) if rng.random() < min(1.0, 3 * noise) else y
    if kind == "numerical":
        p = float(y) * (1.0 + noise * float(rng.normal()))
        return round(p) if isinstance(y, int) else _r2(p)
    if kind == "temporal_iou":
        span = max(y[1] - y[0], 0.5)
        return sorted(max(0.0, _r2(v + noise * span * float(rng.normal()))) for v in y)
    if kind == "box_iou":
        return _jitter_box(rng, y, noise)
    kept = {k: _jitter_box(rng, box, noise) for k, box in y.items() if rng.random() >= noise / 2}
    return kept or {k: _jitter_box(rng, box, noise) for k, box in list(y.items())[:1]}


def _shift_box(rng: np.random.Generator, box: Sequence[float]) -> list[float]:
    """Slide the box past itself along x: disjoint, so IoU 0."""
    k = len(box) // 2
    dx = box[k] - box[0] + float(rng.uniform(0.5, 2.0))
    return [_r2(v + dx) if i % k == 0 else v for i, v in enumerate(box)]


def _wrong_value(rng: np.random.Generator, task: Task) -> Any:
    """An honest answer that earns 0: another letter, a value off by over 50%, a disjoint interval or box."""
    y = task.reference["answer"]
    kind = task.task_type
    if kind == "multiple_choice":
        return _pick(rng, [c for c in LETTERS[: len(task.reference.get("options", LETTERS))] if c != y])
    if kind == "numerical":
        return 3 * y + 1 if isinstance(y, int) else _r2(y * float(rng.uniform(2.2, 4.0)))
    if kind == "temporal_iou":
        gap, length = float(rng.uniform(0.5, 2.0)), max(y[1] - y[0], 0.5)
        return [_r2(y[1] + gap), _r2(y[1] + gap + length)]
    if kind == "box_iou":
        return _shift_box(rng, y)
    return {k: _shift_box(rng, box) for k, box in y.items()}


# ---------------------------------------------------------------------------------------------- graphs


def _frames_of(graph: dict[str, Any]) -> Frames:
    if "frames" in graph:
        return [(k, [(n, list(p)) for n, p in nodes.items()]) for k, nodes in graph["frames"].items()]
    return [(None, [(n, list(p)) for n, p in graph["nodes"].items()])]


def _graph_text(
    frames: Frames, style: str = "json", *, wrap: bool = True, keys: tuple[str, str] = ("name", "pos")
) -> str:
    """Write a graph from (name, position) pairs, so names may repeat as the spec allows.

    Styles: "json", "compact" (no spaces), "list" (NODES as a list of objects), "relaxed" (the spec's
    relaxed JSON: bare or single-quoted keys, tuples, trailing commas). json.dumps writes NaN and
    Infinity as Python's json module reads them.
    """
    sep, colon = (",", ":") if style == "compact" else (", ", ": ")

    def key(s: str) -> str:
        if style == "relaxed":
            return s if _BARE_KEY.fullmatch(s) else f"'{s}'"
        return json.dumps(s)

    def pos(p: Sequence[float]) -> str:
        inner = sep.join(json.dumps(float(v)) for v in p)
        return f"({inner})" if style == "relaxed" else f"[{inner}]"

    def nodes(ns: Nodes) -> str:
        if style == "list":
            objects = (f'{{"{keys[0]}"{colon}{json.dumps(n)}{sep}"{keys[1]}"{colon}{pos(p)}}}' for n, p in ns)
            return "[" + sep.join(objects) + "]"
        return "{" + sep.join(f"{key(n)}{colon}{pos(p)}" for n, p in ns) + ("," if style == "relaxed" else "") + "}"

    if frames[0][0] is None:
        return f"{{{key('nodes')}{colon}{nodes(frames[0][1])}}}" if wrap else nodes(frames[0][1])
    body = sep.join(f"{key(str(k))}{colon}{nodes(ns)}" for k, ns in frames)
    return f"{{{key('frames')}{colon}{{{body}}}}}"


def _rename(rng: np.random.Generator, name: str) -> str:
    """Another spelling of the same category (spec section 3): "Chair 2", "chair#2", or the bare "chair"."""
    base = _base(name)
    num, words = name[len(base) + 1 :], base.replace("-", " ")
    if num:
        return _pick(rng, (f"{words.title()} {num}", f"{base}#{num}", f"{base.upper()}_{num}", f"{words} {num}", base))
    return _pick(rng, (words.title(), base.upper(), words))


def _invented(rng: np.random.Generator, scene: Scene, index: int = 0) -> tuple[str, list[float]]:
    cat = _pick(rng, INDOOR if scene.setting == "indoor" else OUTDOOR)
    hx, hy, height = scene.half_extent
    taken = sum(_base(n) == cat for n in scene.names)
    name = f"{cat}_{taken + 1 + index}" if taken or index else cat
    p = [_r2(rng.uniform(-hx, hx)), _r2(rng.uniform(-hy, hy)), _r2(rng.uniform(0, height))][: scene.dim]
    return name, p


def _noisy_graph_text(rng: np.random.Generator, task: Task, noise: float) -> str:
    scene = task.scene
    frames = _frames_of(task.reference["graph"])
    if len(frames) > 1 and rng.random() < noise:  # a coarser track: only some frames
        keep = rng.choice(len(frames), size=int(rng.integers(1, len(frames) + 1)), replace=False)
        frames = [frames[int(i)] for i in sorted(keep)]
    names = [n for n, _ in frames[0][1]]
    dropped = _pick(rng, names) if len(names) > 1 and rng.random() < noise else None
    spelled = {n: _rename(rng, n) if rng.random() < noise else n for n in names}
    extra = _invented(rng, scene) if rng.random() < noise else None
    sigma = noise * scene.graph_scale / math.sqrt(scene.dim)  # expected displacement about noise * D
    # Now and then the whole layout is turned about the vertical axis: the edge term must not notice.
    turn = float(rng.uniform(0, 2 * math.pi)) if rng.random() < noise / 2 else 0.0
    c, s = math.cos(turn), math.sin(turn)
    key_style = _pick(rng, ("{}", "frame_{}", "t{}")) if rng.random() < noise else "{}"
    out: Frames = []
    for k, nodes in frames:
        moved: Nodes = []
        for n, p in nodes:
            if n != dropped:
                q = [c * p[0] - s * p[1], s * p[0] + c * p[1], *p[2:]]
                moved.append((spelled[n], [_r2(v + sigma * float(rng.normal())) for v in q]))
        moved += [extra] if extra else []
        moved = _shuffled(rng, moved) if rng.random() < noise else moved
        out.append((None if k is None else key_style.format(k), moved))
    r = rng.random()
    style = "list" if r < noise / 3 else "relaxed" if r < 2 * noise / 3 else "json"
    keys = (_pick(rng, ("name", "id", "label")), _pick(rng, ("pos", "position", "center")))
    text = _graph_text(out, style, wrap=rng.random() < 0.7, keys=keys)
    return text if len(text) <= 2800 else _graph_text(out, "compact")  # keeps completions within 4 KB


def _exact_graph_text(task: Task) -> str | None:
    graph = task.reference.get("graph")
    return None if graph is None else json.dumps(graph)


# ---------------------------------------------------------------------------------------- completions


def _sentence(rng: np.random.Generator, scene: Scene) -> str:
    r, names = rng.random(), scene.names
    f = _pick(rng, scene.frames)
    a, b = _pick(rng, names), _pick(rng, names)
    if r < 0.35 and a != b:
        d = _dist(scene.positions[f][a], scene.positions[f][b])
        return f"In frame {f} the {a} is about {d:.1f} m from the {b}."
    if r < 0.55:
        x, y = scene.positions[f][a][:2]
        return f"In frame {f} the {a} sits near ({x:.1f}, {y:.1f})."
    if r < 0.65 and scene.movers:
        m = _pick(rng, scene.movers)
        return f"The {m} moves between {scene.intervals[m][0]:.1f} s and {scene.intervals[m][1]:.1f} s."
    if r < 0.7:
        return f"The whole area spans about {scene.graph_scale:.1f} m corner to corner."
    return _pick(rng, _FILLER)


def _pad(rng: np.random.Generator, scene: Scene | None, need: int, *, exact: bool = False) -> str:
    """Plausible reasoning of at least `need` characters (exactly `need` with exact=True)."""
    lines: list[str] = []
    line: list[str] = []
    size = 0
    while size <= need or not (lines or line):  # text is size - 1 long (no separator after the last)
        line.append(_sentence(rng, scene) if scene is not None else _pick(rng, _FILLER))
        size += len(line[-1]) + 1
        if len(line) == 4:
            lines.append(" ".join(line))
            line = []
    text = "\n".join([*lines, " ".join(line)] if line else lines)
    return text[: max(need, 0)] if exact else text


def _compose(intro: str, graph: str | None, reasoning: str, answer: str) -> str:
    block = f"<graph>\n{graph}\n</graph>\n" if graph is not None else ""
    return f"<think>\n{intro}\n{block}{reasoning}\n</think>\n<answer>{answer}</answer>"


def _render(rng: np.random.Generator, task: Task, answer: str, graph: str | None, *, size: int | None = None) -> str:
    """A well-formed completion padded to `size` characters (default: 1.1 to 3.9 KB, within 1-4 KB)."""
    intro = f"The question asks: {task.question}\n{_sentence(rng, task.scene)}"
    target = int(rng.integers(1100, 3900)) if size is None else size
    reasoning = _pad(rng, task.scene, target - len(_compose(intro, graph, "", answer)))
    return _compose(intro, graph, reasoning, answer)
