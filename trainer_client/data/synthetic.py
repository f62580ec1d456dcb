"""Synthetic STV-style tasks as text: the project's scene generator with the video replaced by a
written scene description, for CPU runs and tests.

    frame 0 : "chair_1" ( 3 , 4 ) "table" ( 7 , 2 ) "lamp" ( 1 , 8 )
    Which object is closest to the lamp ?        Options: A. table B. chair_1

Scenes come from `reward_service.synth.scenes` (a few indoor objects on a floor plan, optionally moving over
frames) with positions snapped to an integer grid, so every coordinate is one token of the tiny
model's vocabulary and the scene text, the reference graph and the question agree exactly. Questions
are the generator's own (multiple choice: closest object, relative position, count, direction of
motion; numerical: distances, counts), recomputed on the snapped scene.

Train and held-out sets come from different seeds (`split`), and a held-out record that happens to
equal a training one is dropped from the held-out set, so evaluation never sees a training prompt.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from reward_service.scoring.reference import OPTION_LETTERS
from reward_service.synth.scenes import Scene, generate_scene
from reward_service.synth.tasks import generate_task
from trainer_client.data import Record

TEXT_TASK_TYPES = ("multiple_choice", "numerical")  # the others need pixel boxes or times, not a floor plan
CATEGORIES = ("chair", "table", "sofa", "lamp", "plant", "tv")
_EVAL_SEED_OFFSET = 1_000_003


def _snap(scene: Scene, grid: int) -> Scene | None:
    """The scene with positions on a grid of `grid` x `grid` integer cells; None if two objects share a
    cell in some frame (then "closest" or "left of" could have no single answer)."""
    hx, hy, _ = scene.half_extent
    positions: dict[int, dict[str, tuple[float, ...]]] = {}
    for frame, objects in scene.positions.items():
        snapped: dict[str, tuple[float, ...]] = {name: (float(round((p[0] + hx) / (2 * hx) * (grid - 1))),
                          float(round((p[1] + hy) / (2 * hy) * (grid - 1)))) for name, p in objects.items()}
        if len(set(snapped.values())) < len(snapped):
            return None
        positions[frame] = snapped
    half = (grid - 1) / 2
    return dataclasses.replace(scene, positions=positions, dim=2, half_extent=(half, half, 0.0),
                               graph_scale=round(math.hypot(grid - 1, grid - 1), 2))


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def scene_text(scene: Scene) -> str:
    """`frame F : "name" ( x , y ) ...` for every sampled frame (a still scene: its one frame); names are
    quoted as the graph's JSON quotes them, so a policy copies them as they stand."""
    frames = scene.frames if scene.moving else scene.frames[:1]
    return " ".join(f"frame {f} : " + " ".join(f'"{name}" ( {_number(p[0])} , {_number(p[1])} )'
                                               for name, p in scene.positions[f].items()) for f in frames)


def synthetic_record(rng: np.random.Generator, index: str, *, task_types: Sequence[str] = ("multiple_choice",),
                     objects: tuple[int, int] = (3, 4), frames: tuple[int, int] = (1, 1), grid: int = 10) -> Record:
    """One text task; `objects` and `frames` are inclusive ranges."""
    for task_type in task_types:
        if task_type not in TEXT_TASK_TYPES:
            raise ValueError(f"synthetic text tasks have no {task_type!r} (only {', '.join(TEXT_TASK_TYPES)})")
    while True:
        n_frames = int(rng.integers(frames[0], frames[1] + 1))
        scene = _snap(generate_scene(rng, n_objects=int(rng.integers(objects[0], objects[1] + 1)),
                                     n_frames=n_frames, dim=2, moving=n_frames > 1, setting="indoor",
                                     categories=CATEGORIES), grid)
        if scene is not None:
            break
    task = generate_task(rng, str(task_types[int(rng.integers(len(task_types)))]), True, scene)
    question, _, _ = task.question.partition(" Options: ")  # the record carries the options itself
    return Record(id=index, question=f"{scene_text(scene)} {question}", options=task.reference.get("options"),
                  reference=task.reference)


def synthetic_records(n: int, seed: int, **kwargs: object) -> list[Record]:
    rng = np.random.default_rng(seed)
    return [synthetic_record(rng, f"syn{seed}-{i}", **kwargs) for i in range(n)]  # type: ignore[arg-type]


def split(n_train: int, n_eval: int, seed: int, **kwargs: object) -> tuple[list[Record], list[Record]]:
    """Training and held-out records from two seeds; held-out prompts never repeat a training one."""
    train = synthetic_records(n_train, seed, **kwargs)
    seen = {(r.question, tuple(r.options or ())) for r in train}
    held_out = [r for r in synthetic_records(n_eval, seed + _EVAL_SEED_OFFSET, **kwargs)
                if (r.question, tuple(r.options or ())) not in seen]
    return train, held_out


def graph_text(record: Record, positions: dict[str, dict[str, list[float]]] | None = None) -> str:
    """The reference graph written as the policy should write it (frame -> name -> [x, y])."""
    graph = record.reference["graph"]
    frames = positions or (dict(graph["frames"]) if "frames" in graph else {"0": graph["nodes"]})

    def nodes(objects: dict[str, list[float]]) -> str:
        pairs = (f'"{name}" : [ {_number(p[0])} , {_number(p[1])} ]' for name, p in objects.items())
        return "{ " + " , ".join(pairs) + " }"

    if "frames" not in graph:
        return nodes(next(iter(frames.values())))
    return '{ "frames" : { ' + " , ".join(f'"{f}" : {nodes(objs)}' for f, objs in frames.items()) + " } }"


def answer_text(record: Record) -> str:
    answer = record.reference["answer"]
    return _number(float(answer)) if record.task_type == "numerical" else str(answer)


def target_completion(record: Record, rng: np.random.Generator | None = None, *, position_noise: float = 0.0,
                      answer_noise: float = 0.0, grid: int = 10) -> str:
    """A completion in the trained format: the graph copied from the scene and the right answer; with
    noise, each coordinate is replaced by a random cell with probability `position_noise` and the
    answer by a random option (or a nearby number) with probability `answer_noise`. The warm-up trains
    on noisy targets so that it teaches the format but leaves GRPO room to improve."""
    graph = record.reference["graph"]
    frames = dict(graph["frames"]) if "frames" in graph else {"0": graph["nodes"]}
    answer = answer_text(record)
    if rng is not None:
        frames = {f: {name: [float(rng.integers(grid)) if rng.random() < position_noise else v for v in p]
                      for name, p in objs.items()} for f, objs in frames.items()}
        if rng.random() < answer_noise:
            if record.options:
                answer = OPTION_LETTERS[int(rng.integers(len(record.options)))]
            else:
                answer = _number(max(0.0, round(float(record.reference["answer"]) + rng.normal(0, 1.5), 1)))
    return f"<think> <graph> {graph_text(record, frames)} </graph> </think> <answer> {answer} </answer>"
