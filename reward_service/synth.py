"""Seeded generator of STV-style samples: scenes, tasks, references and completions of known quality.

Why it exists: the service's quality bars (design.md) are measured on a "standard mix" of synthetic
tasks and its limits (reward-spec.md section 4) on worst-case inputs; both must be reproducible from
a seed without downloading STV-205k (the Video-STR paper's video spatio-temporal QA data set). It
needs only numpy and the scoring core (whose limits it takes), so it imports wherever the core does.

    rng = np.random.default_rng(0)
    task = generate_task(rng, "numerical", with_graph=True)
    text = make_completion(rng, task, "noisy", noise=0.2)
    items = standard_mix(512, seed=1)  # 64 GRPO groups of 8 rollouts
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from reward_service.graph import MAX_FRAMES, MAX_GRAPH_BYTES, MAX_NODES
from reward_service.graph import category as category_of  # noqa: F401 (public: the scorer's rule, not a copy)
from reward_service.parsing.numbers import NUMBER_WORDS
from reward_service.parsing.relaxed_json import MAX_DEPTH
from reward_service.scoring.config import DEFAULT_REWARD_CONFIG
from reward_service.scoring.reference import MAX_TRACK_FRAMES, TASK_TYPES
from reward_service.scoring.reference import OPTION_LETTERS as LETTERS
from reward_service.scoring.total import MAX_ANSWER_CHARS, MAX_TRACK_ANSWER_CHARS

T = TypeVar("T")
Nodes = list[tuple[str, list[float]]]
Frames = list[tuple[str | None, Nodes]]  # (frame key, nodes); one (None, nodes) for a static graph

# "wrong" is an honest, well-formed completion whose answer earns 0: the yardstick adversarial kinds
# must not beat, and the low end of a GRPO group.
QUALITIES = ("exact", "noisy", "wrong", "malformed", "adversarial")
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

GROUP_SIZE = 8
# The scorer's limits (reward-spec section 4), taken from where it defines them: worst cases sit on them.
MAX_COMPLETION_CHARS = DEFAULT_REWARD_CONFIG.max_completion_chars
IMAGE_W, IMAGE_H = 640.0, 480.0

# Category -> (width, depth, height) in metres. Hyphenated names exercise the spec's category rule
# ("traffic-light_2" is traffic_light); no name ends in a digit, so instance numbers are unambiguous.
SIZES: dict[str, tuple[float, float, float]] = {
    "chair": (0.5, 0.5, 0.9), "table": (1.4, 0.8, 0.75), "sofa": (2.0, 0.9, 0.85), "bed": (2.0, 1.6, 0.6),
    "lamp": (0.4, 0.4, 1.6), "tv": (1.2, 0.1, 0.7), "cabinet": (1.0, 0.5, 1.8), "bookshelf": (0.9, 0.35, 2.0),
    "plant": (0.4, 0.4, 0.8), "desk": (1.2, 0.6, 0.75), "refrigerator": (0.8, 0.7, 1.8), "sink": (0.6, 0.5, 0.9),
    "stool": (0.35, 0.35, 0.6), "monitor": (0.6, 0.2, 0.45), "trash-can": (0.35, 0.35, 0.6),
    "robot-vacuum": (0.35, 0.35, 0.1), "person": (0.5, 0.3, 1.7), "dog": (0.8, 0.3, 0.6),
    "car": (4.5, 1.8, 1.5), "bicycle": (1.8, 0.6, 1.1), "motorcycle": (2.1, 0.8, 1.2), "bus": (10.0, 2.5, 3.2),
    "traffic-light": (0.4, 0.4, 3.0), "tree": (1.5, 1.5, 5.0), "bench": (1.8, 0.6, 0.8),
    "fire-hydrant": (0.3, 0.3, 0.7), "stop-sign": (0.7, 0.1, 2.5), "street-lamp": (0.4, 0.4, 4.5),
}  # fmt: skip
INDOOR = ("chair", "table", "sofa", "bed", "lamp", "tv", "cabinet", "bookshelf", "plant", "desk",
          "refrigerator", "sink", "stool", "monitor", "trash-can", "robot-vacuum", "person", "dog")  # fmt: skip
OUTDOOR = ("car", "bicycle", "motorcycle", "bus", "traffic-light", "tree", "bench", "fire-hydrant",
           "stop-sign", "street-lamp", "trash-can", "person", "dog")  # fmt: skip
MOVABLE = frozenset({"person", "dog", "robot-vacuum", "car", "bicycle", "motorcycle", "bus"})
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


@dataclass
class Scene:
    """A room or street seen over sampled frames; positions are object centres in metres (z up)."""

    setting: str  # "indoor" or "outdoor"
    dim: int  # 2 (floor plan) or 3
    frames: list[int]  # sorted frame numbers, e.g. [0, 8, 16]
    positions: dict[int, dict[str, tuple[float, ...]]]  # frame -> object name -> position
    graph_scale: float  # diagonal of the area (the spec's D)
    half_extent: tuple[float, float, float]  # x and y half sizes of the area, and its height
    moving: bool = False
    movers: list[str] = field(default_factory=list)
    # Seconds: when a mover moves, or when a still object is in view (the camera pans).
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    fps: float = 2.0

    @property
    def names(self) -> list[str]:
        return list(self.positions[self.frames[0]])

    def graph(self) -> dict[str, Any]:
        """The reference graph: static for a still room, dynamic (one entry per frame) otherwise."""
        def nodes(f: int) -> dict[str, list[float]]:
            return {name: list(p) for name, p in self.positions[f].items()}

        if not self.moving:
            return {"nodes": nodes(self.frames[0])}
        return {"frames": {str(f): nodes(f) for f in self.frames}}


@dataclass
class Task:
    reference: dict[str, Any]  # exactly as reward-spec.md describes it
    question: str
    scene: Scene
    unit: str = ""  # unit word of a numerical answer ("m"); "" for counts

    @property
    def task_type(self) -> str:
        return str(self.reference["task_type"])


# ---------------------------------------------------------------------------------------------- helpers


def _pick(rng: np.random.Generator, seq: Sequence[T]) -> T:
    return seq[int(rng.integers(len(seq)))]


def _shuffled(rng: np.random.Generator, seq: Sequence[T]) -> list[T]:
    return [seq[int(i)] for i in rng.permutation(len(seq))]


def _r2(x: float) -> float:
    return round(float(x), 2) + 0.0  # + 0.0 turns -0.0 into 0.0, which reads better in JSON


def _num(x: float | int) -> str:
    """The shortest text that reads back as the same value, so an exact answer parses exactly."""
    return str(x) if isinstance(x, int) else repr(float(x))


def _base(name: str) -> str:
    """Our own naming: "traffic-light_2" -> "traffic-light", "table" -> "table"."""
    head, _, tail = name.rpartition("_")
    return head if head and tail.isdigit() else name


def _dist(a: Sequence[float], b: Sequence[float]) -> float:
    return float(np.linalg.norm(np.subtract(a, b)))


def applicable_kinds(quality: str, task_type: str) -> tuple[str, ...]:
    kinds = MALFORMED_KINDS if quality == "malformed" else ADVERSARIAL_KINDS
    return tuple(k for k in kinds if task_type in KIND_TASK_TYPES.get(k, TASK_TYPES))


# ------------------------------------------------------------------------------------------------ scenes


def generate_scene(
    rng: np.random.Generator,
    n_objects: int | None = None,
    n_frames: int | None = None,
    dim: int | None = None,
    moving: bool | None = None,
    *,
    setting: str | None = None,
    categories: Sequence[str] | None = None,
) -> Scene:
    """A scene within the spec's reference limits; `categories` narrows the vocabulary (several instances)."""
    moving = bool(rng.random() < 0.5) if moving is None else moving
    n_objects = int(rng.integers(4, 13)) if n_objects is None else n_objects
    n_frames = int(rng.integers(2 if moving else 1, 9)) if n_frames is None else n_frames
    dim = _pick(rng, (2, 3)) if dim is None else dim
    if not 1 <= n_objects <= MAX_NODES or not 1 <= n_frames <= MAX_FRAMES or dim not in (2, 3):
        raise ValueError(f"scene out of the spec's limits: {n_objects} objects, {n_frames} frames, dim {dim}")
    if moving and n_frames < 2:
        raise ValueError("a moving scene needs at least two frames")
    setting = setting or _pick(rng, ("indoor", "outdoor"))
    vocab = INDOOR if setting == "indoor" else OUTDOOR
    # Moving scenes start with one or two movable things, so someone can move.
    first = [_pick(rng, [c for c in vocab if c in MOVABLE]) for _ in range(int(rng.integers(1, 3)))]
    names = _instance_names(rng, list(categories or vocab), n_objects, first if moving and not categories else [])

    hx, hy = (float(v) for v in (rng.uniform(2.5, 6.0, 2) if setting == "indoor" else rng.uniform(6.0, 10.0, 2)))
    height = 3.0 if setting == "indoor" else 6.0
    low, high = np.array([-hx + 0.3, -hy + 0.3]), np.array([hx - 0.3, hy - 0.3])
    start: dict[str, np.ndarray] = {}
    for name in names:
        for _ in range(50):  # rejection sampling keeps objects apart, so "closest" has one answer
            xy = rng.uniform(low, high)
            if all(np.linalg.norm(xy - p[:2]) >= 0.6 for p in start.values()):
                break
        z = min(SIZES.get(_base(name), (0.5, 0.5, 1.0))[2] / 2, height)
        start[name] = np.append(xy, z) if dim == 3 else xy

    step, fps = _pick(rng, (4, 8, 16)), _pick(rng, (2.0, 4.0))
    frames = [k * step for k in range(n_frames)]
    motion: dict[str, tuple[int, int, np.ndarray]] = {}
    if moving:
        movable = [n for n in names if _base(n) in MOVABLE] or names
        k = int(rng.integers(1, max(1, len(movable) // 2) + 1))
        for i in sorted(int(i) for i in rng.choice(len(movable), size=k, replace=False)):
            i0, i1 = sorted(int(j) for j in rng.choice(n_frames, size=2, replace=False))
            end = start[movable[i]].copy()
            end[:2] = rng.uniform(low, high)  # a straight line inside the area: constant velocity stays in bounds
            motion[movable[i]] = (frames[i0], frames[i1], end)

    positions: dict[int, dict[str, tuple[float, ...]]] = {}
    for f in frames:
        positions[f] = {}
        for name in names:
            p = start[name]
            if name in motion:
                f0, f1, end = motion[name]
                a = min(max((f - f0) / (f1 - f0), 0.0), 1.0)
                p = start[name] + a * (end - start[name])
                if 0.0 < a < 1.0:  # tracking noise while moving; start and end stay clean
                    p[:2] = np.clip(p[:2] + rng.normal(0.0, 0.03, 2), (-hx, -hy), (hx, hy))
            positions[f][name] = tuple(_r2(v) for v in p)

    duration = (frames[-1] + step) / fps
    intervals: dict[str, tuple[float, float]] = {}
    for name in names:
        if name in motion:
            intervals[name] = (motion[name][0] / fps, motion[name][1] / fps)
        else:
            s = round(float(rng.uniform(0.0, 0.5)) * duration, 1)
            intervals[name] = (s, max(round(float(rng.uniform(0.6, 1.0)) * duration, 1), s + 0.5))
    return Scene(
        setting=setting, dim=dim, frames=frames, positions=positions,
        graph_scale=_r2(math.hypot(2 * hx, 2 * hy, height if dim == 3 else 0.0)),
        half_extent=(hx, hy, height), moving=moving, movers=list(motion), intervals=intervals, fps=fps,
    )  # fmt: skip


def _instance_names(rng: np.random.Generator, pool: list[str], n: int, first: list[str]) -> list[str]:
    counts: dict[str, int] = Counter(first[:n])
    while (total := sum(counts.values())) < n:
        cat = _pick(rng, pool)
        counts[cat] = counts.get(cat, 0) + min(n - total, _pick(rng, (1, 1, 1, 2, 2, 3)))
    return [cat if k == 1 else f"{cat}_{i}" for cat, k in counts.items() for i in range(1, k + 1)]


def _pixel_box(scene: Scene, name: str, frame: int) -> list[float]:
    """A 2D box in a 640x480 top-down view; at least 8 px wide so max stays above min after rounding."""
    x, y = scene.positions[frame][name][:2]
    hx, hy, _ = scene.half_extent
    w, d, _ = SIZES.get(_base(name), (0.5, 0.5, 1.0))
    bw, bh = min(0.9 * IMAGE_W, max(8.0, w / (2 * hx) * IMAGE_W)), min(0.9 * IMAGE_H, max(8.0, d / (2 * hy) * IMAGE_H))
    u = min(max((x + hx) / (2 * hx) * IMAGE_W, bw / 2), IMAGE_W - bw / 2)
    v = min(max((hy - y) / (2 * hy) * IMAGE_H, bh / 2), IMAGE_H - bh / 2)
    return [round(u - bw / 2, 1) + 0.0, round(v - bh / 2, 1) + 0.0, round(u + bw / 2, 1), round(v + bh / 2, 1)]


# ------------------------------------------------------------------------------------------------- tasks

Question = tuple[str, Any, list[str] | None, str]  # text, answer, options, unit


def _options_question(rng: np.random.Generator, text: str, correct: str, others: list[str],
                      ordered: bool = False) -> Question:  # fmt: skip
    options = sorted([correct, *others], key=int) if ordered else _shuffled(rng, [correct, *others])
    listing = " ".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))
    return f"{text} Options: {listing}", LETTERS[options.index(correct)], options, ""


def _side(d: Sequence[float] | np.ndarray, words: tuple[str, str, str, str]) -> str:
    """Dominant axis of a displacement: x is left/right, y is away from/toward the camera."""
    if abs(d[0]) >= abs(d[1]):
        return words[1] if d[0] > 0 else words[0]
    return words[2] if d[1] > 0 else words[3]


def _multiple_choice(rng: np.random.Generator, scene: Scene) -> Question:
    pos, names = scene.positions[scene.frames[0]], scene.names
    kind = _pick(rng, ["relation", "count", "closest", "closest"] + (["direction"] * 2 if scene.movers else []))
    if kind == "closest" and len(names) >= 4:
        anchor = _pick(rng, names)
        others = sorted((n for n in names if n != anchor), key=lambda n: _dist(pos[anchor], pos[n]))
        far = [n for n in others[1:] if _dist(pos[anchor], pos[n]) > _dist(pos[anchor], pos[others[0]]) + 0.1]
        if len(far) >= 2:
            k = min(len(far), int(rng.integers(2, 5)))
            picked = [far[int(i)] for i in rng.choice(len(far), size=k, replace=False)]
            return _options_question(rng, f"Which object is closest to the {anchor}?", others[0], picked)
    if kind == "count":
        counts = Counter(_base(n) for n in names)
        cat = _pick(rng, sorted(counts))
        wrong = [v for v in range(max(1, counts[cat] - 3), counts[cat] + 5) if v != counts[cat]]
        picked = [str(wrong[int(i)]) for i in rng.choice(len(wrong), size=3, replace=False)]
        text = f"How many {cat.replace('-', ' ')} objects appear in the video?"
        return _options_question(rng, text, str(counts[cat]), picked, ordered=True)
    if kind == "direction" and scene.movers:
        mover = _pick(rng, scene.movers)
        d = np.subtract(scene.positions[scene.frames[-1]][mover], scene.positions[scene.frames[0]][mover])
        words = ("to the left", "to the right", "away from the camera", "toward the camera")
        correct = _side(d, words)
        return _options_question(rng, f"In which direction does the {mover} move?", correct,
                                 [w for w in words if w != correct])  # fmt: skip
    a, b = (names[int(i)] for i in rng.choice(len(names), size=2, replace=False))
    words = ("left of", "right of", "behind", "in front of")
    correct = _side(np.subtract(pos[a], pos[b]), words)
    text = f"Seen from the camera, where is the {a} relative to the {b}?"
    return _options_question(rng, text, correct, [w for w in words if w != correct])


def _numerical(rng: np.random.Generator, scene: Scene) -> Question:
    first, last = scene.positions[scene.frames[0]], scene.positions[scene.frames[-1]]
    kind = _pick(rng, ["distance", "count"] + (["travel"] if scene.movers else []))
    if kind == "travel":
        mover = _pick(rng, scene.movers)
        if _dist(first[mover], last[mover]) >= 0.1:
            return f"How far does the {mover} travel, in metres?", _r2(_dist(first[mover], last[mover])), None, "m"
    a, b = (scene.names[int(i)] for i in rng.choice(len(scene.names), size=2, replace=False))
    if kind == "count" or _dist(first[a], first[b]) < 0.05:  # never a reference of 0: MRA is all-or-nothing there
        counts = Counter(_base(n) for n in scene.names)
        cat = _pick(rng, sorted(counts))
        return f"How many {cat.replace('-', ' ')} objects appear in the video?", counts[cat], None, ""
    text = f"How far apart are the {a} and the {b} in the first frame, in metres?"
    return text, _r2(_dist(first[a], first[b])), None, "m"


def _temporal(rng: np.random.Generator, scene: Scene) -> Question:
    name = _pick(rng, scene.movers) if scene.movers and rng.random() < 0.8 else _pick(rng, scene.names)
    verb = "move" if name in scene.movers else "stay in view"
    return f"During which time span, in seconds, does the {name} {verb}?", list(scene.intervals[name]), None, "s"


def _box(rng: np.random.Generator, scene: Scene) -> Question:
    name = _pick(rng, scene.names)
    if scene.dim == 2:
        return f"Give the bounding box [x1, y1, x2, y2] of the {name} in the first frame, in pixels.", \
            _pixel_box(scene, name, scene.frames[0]), None, ""  # fmt: skip
    centre, size = scene.positions[scene.frames[0]][name], SIZES.get(_base(name), (0.5, 0.5, 1.0))
    box = [_r2(c - s / 2) for c, s in zip(centre, size, strict=True)]
    box += [_r2(c + s / 2) for c, s in zip(centre, size, strict=True)]
    return f"Give the 3D box [x1, y1, z1, x2, y2, z2] of the {name}, in metres.", box, None, ""


def _track(rng: np.random.Generator, scene: Scene) -> Question:
    name = _pick(rng, scene.movers or scene.names)
    track = {str(f): _pixel_box(scene, name, f) for f in scene.frames}
    return f"Track the {name}: give its box [x1, y1, x2, y2] in pixels for every sampled frame.", track, None, ""


_QUESTIONS = {"multiple_choice": _multiple_choice, "numerical": _numerical, "temporal_iou": _temporal,
              "box_iou": _box, "track_iou": _track}  # fmt: skip


def generate_task(rng: np.random.Generator, task_type: str, with_graph: bool, scene: Scene | None = None) -> Task:
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task type {task_type!r}")
    if scene is None:
        scene = generate_scene(rng, moving=True if task_type == "track_iou" else None)
    question, answer, options, unit = _QUESTIONS[task_type](rng, scene)
    reference: dict[str, Any] = {"task_type": task_type, "answer": answer}
    if options is not None:
        reference["options"] = options
    if with_graph:
        reference["graph"], reference["graph_scale"] = scene.graph(), scene.graph_scale
    return Task(reference, question, scene, unit)


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


def make_completion(
    rng: np.random.Generator, task: Task, quality: str, *, noise: float = 0.1, kind: str | None = None
) -> str:
    """A completion of controlled quality for `task` (see QUALITIES, MALFORMED_KINDS, ADVERSARIAL_KINDS)."""
    if quality in ("malformed", "adversarial"):
        kinds = applicable_kinds(quality, task.task_type)
        kind = _pick(rng, kinds) if kind is None else kind
        if kind not in kinds:
            raise ValueError(f"{quality} kind {kind!r} does not apply to {task.task_type}")
        return _malformed(rng, task, kind) if quality == "malformed" else _adversarial(rng, task, kind)
    if kind is not None:
        raise ValueError(f"kind is only for malformed or adversarial completions, not {quality!r}")
    if quality == "exact":
        return _render(rng, task, _format_answer(rng, task, task.reference["answer"]), _exact_graph_text(task))
    if quality == "noisy":
        graph = _noisy_graph_text(rng, task, noise) if "graph" in task.reference else None
        return _render(rng, task, _format_answer(rng, task, _noisy_value(rng, task, noise)), graph)
    if quality == "wrong":
        return _render(rng, task, _format_answer(rng, task, _wrong_value(rng, task)), _exact_graph_text(task))
    raise ValueError(f"unknown quality {quality!r}; expected one of {QUALITIES}")


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


# -------------------------------------------------------------------------------------- mixes and files

# design.md's standard mix: 60% exact or close, 25% noisy, 15% malformed or adversarial.
MIX_SHARES = (("exact", 0.30), ("close", 0.30), ("noisy", 0.25), ("faulty", 0.15))


def _item(item_id: str, group_id: str, completion: str, reference: dict[str, Any], num_tokens: int,
          quality: str) -> dict[str, Any]:  # fmt: skip
    return {"id": item_id, "group_id": group_id, "completion": completion, "reference": reference,
            "num_tokens": num_tokens, "quality": quality}  # fmt: skip


def _mix_labels(rng: np.random.Generator, n: int) -> list[str]:
    """Exact counts by largest remainder, then shuffled: the proportions hold for every n, not on average."""
    raw = [n * share for _, share in MIX_SHARES]
    counts = [math.floor(x) for x in raw]
    for i in sorted(range(len(raw)), key=lambda i: counts[i] - raw[i])[: n - sum(counts)]:
        counts[i] += 1
    labels = [name for (name, _), c in zip(MIX_SHARES, counts, strict=True) for _ in range(c)]
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


def standard_mix(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` items in GRPO groups of 8 sharing a reference; task types cycle, graphs on every other round.

    `quality` is "exact", "close" (noise <= 0.05), "noisy" (0.1 to 0.5), "malformed:<kind>" or
    "adversarial:<kind>".
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = np.random.default_rng(seed)
    labels = _mix_labels(rng, n)
    items: list[dict[str, Any]] = []
    for g in range(math.ceil(n / GROUP_SIZE)):
        task = _mix_task(rng, TASK_TYPES[g % len(TASK_TYPES)], with_graph=(g // len(TASK_TYPES)) % 2 == 0)
        group_id = f"mix{seed}-g{g:05d}"
        for r in range(min(GROUP_SIZE, n - g * GROUP_SIZE)):
            completion, quality = _mix_completion(rng, task, labels[g * GROUP_SIZE + r])
            tokens = max(1, round(len(completion) / float(rng.uniform(3.0, 4.5))))  # ~4 characters a token
            items.append(_item(f"{group_id}-r{r}", group_id, completion, dict(task.reference), tokens, quality))
    return items


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
    return [_item(f"worst-{name}", "worst-case", text, ref, max(1, len(text) // 4), "worst_case")
            for name, text, ref in cases]  # fmt: skip


def write_jsonl(path: str | os.PathLike[str], items: Iterable[dict[str, Any]]) -> int:
    """Write items one JSON object a line; returns how many were written."""
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for item in items:
            out.write(json.dumps(item) + "\n")
            count += 1
    return count
