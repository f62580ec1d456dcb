"""Tasks of the five task types on a scene: a question, its options and a reference ready to post."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from reward_service.scoring.reference import OPTION_LETTERS as LETTERS
from reward_service.scoring.reference import TASK_TYPES
from reward_service.synth.common import _base, _dist, _pick, _r2, _shuffled
from reward_service.synth.scenes import SIZES, Scene, _pixel_box, generate_scene


@dataclass
class Task:
    """A question about a scene and its reference: `reference` is ready to post (api.md), `question` the
    text a policy is asked, `unit` the unit word of a numerical answer."""

    reference: dict[str, Any]  # exactly as reward-spec.md describes it
    question: str
    scene: Scene
    unit: str = ""  # unit word of a numerical answer ("m"); "" for counts

    @property
    def task_type(self) -> str:
        return str(self.reference["task_type"])


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
