"""Seeded scenes: a room or a street, its objects and where they are over the sampled frames."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reward_service.graph import MAX_FRAMES, MAX_NODES
from reward_service.synth.common import _base, _pick, _r2

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
