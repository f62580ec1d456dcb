"""Synthetic videos of the generator's scenes, for tests and the GPU smoke: each object a filled square
of its category's colour, seen from above, moving as the scene says.

    video = write_scene_video(scene, "scene.mp4", size=(64, 48), fps=8, duration=2.0)
    video.centre_px("chair_1", t=0.75)       # where the chair's square is at 0.75 s, in pixels

The floor plan maps onto the picture as the generator's pixel boxes do (x to the right, y away from the
camera and so up the picture). Time: the scene's frame numbers are frames of its own clock (frame f at
f / scene.fps seconds); the video plays that clock, or stretches it to `duration` seconds, and between
two of the scene's frames every object moves in a straight line (the generator's movers move at
constant velocity), holding its last position after the last one. `SceneVideo.render(t)` draws the
picture at any time, so a test can compare a decoded frame with what was drawn.

Videos are H.264 (libx264 via PyAV) in .mp4, MPEG-4 part 2 where a PyAV build lacks libx264.
`scene_video_records` makes a small dataset of such videos with the generator's questions and graphs.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from reward_service.synth.scenes import Scene, generate_scene
from reward_service.synth.tasks import generate_task
from trainer_client.data import Record
from trainer_client.data.synthetic import CATEGORIES

# Saturated, far-apart colours for the synthetic categories, so 4:2:0 chroma and compression keep them
# apart; any other category gets a colour from its name (stable across runs and machines).
CATEGORY_COLOURS: dict[str, tuple[int, int, int]] = {
    "chair": (230, 30, 30), "table": (30, 200, 30), "sofa": (40, 60, 230),
    "lamp": (240, 220, 20), "plant": (220, 40, 220), "tv": (20, 220, 230),
}  # fmt: skip
BACKGROUND = (16, 16, 16)
VIDEO_TASK_TYPES = ("multiple_choice", "numerical")  # floor-plan questions; the others use 640x480 boxes or the clock


def category(name: str) -> str:
    """"chair_2" -> "chair": instance numbers follow the last underscore."""
    head, _, tail = name.rpartition("_")
    return head if head and tail.isdigit() else name


def category_colour(name: str) -> tuple[int, int, int]:
    cat = category(name)
    if cat in CATEGORY_COLOURS:
        return CATEGORY_COLOURS[cat]
    h = zlib.crc32(cat.encode())
    return (64 + h % 192, 64 + (h >> 8) % 192, 64 + (h >> 16) % 192)


def video_codec() -> str:
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


@dataclass(frozen=True)
class SceneVideo:
    """A scene as drawn into a video: where each square is at any time, and the picture itself."""

    scene: Scene
    path: Path
    size: tuple[int, int]  # (width, height)
    fps: float
    duration: float  # seconds
    square: int  # side of each object's square, in pixels

    @property
    def num_frames(self) -> int:
        return max(1, round(self.duration * self.fps))

    def positions_at(self, t: float) -> dict[str, tuple[float, float]]:
        """Floor-plan positions (metres) at `t` seconds: straight lines between the scene's frames."""
        frames = self.scene.frames
        last = frames[-1] + (frames[1] - frames[0] if len(frames) > 1 else 1)  # the scene clock's end
        f = min(max(t / self.duration, 0.0), 1.0) * last  # t in the scene's frame numbers
        k = max(0, min(int(np.searchsorted(frames, f, side="right")) - 1, len(frames) - 1))
        a = self.scene.positions[frames[k]]
        if k + 1 == len(frames):
            return {name: (p[0], p[1]) for name, p in a.items()}
        b, w = self.scene.positions[frames[k + 1]], (f - frames[k]) / (frames[k + 1] - frames[k])
        return {name: (p[0] + w * (b[name][0] - p[0]), p[1] + w * (b[name][1] - p[1])) for name, p in a.items()}

    def centre_px(self, name: str, t: float) -> tuple[int, int]:
        """(column, row) of the centre of `name`'s square at `t` seconds."""
        x, y = self.positions_at(t)[name]
        hx, hy, _ = self.scene.half_extent
        width, height = self.size
        return (min(width - 1, int((x + hx) / (2 * hx) * width)), min(height - 1, int((hy - y) / (2 * hy) * height)))

    def render(self, t: float) -> np.ndarray:
        """The picture at `t` seconds: (height, width, 3) uint8 RGB, objects drawn in scene order."""
        width, height = self.size
        picture = np.empty((height, width, 3), dtype=np.uint8)
        picture[:] = BACKGROUND
        half = self.square // 2
        for name in self.positions_at(t):
            u, v = self.centre_px(name, t)
            picture[max(0, v - half):v - half + self.square, max(0, u - half):u - half + self.square] = \
                category_colour(name)
        return picture


def write_scene_video(scene: Scene, path: str | os.PathLike[str], *, size: tuple[int, int] = (64, 48),
                      fps: float = 8.0, duration: float | None = None, square: int | None = None) -> SceneVideo:
    """Draw `scene` into an .mp4 at `path`; `duration` (seconds) defaults to the scene's own clock."""
    width, height = size
    if width % 2 or height % 2:
        raise ValueError(f"H.264 in 4:2:0 needs even sides, got {width}x{height}")
    if duration is None:
        step = scene.frames[1] - scene.frames[0] if len(scene.frames) > 1 else 1
        duration = (scene.frames[-1] + step) / scene.fps
    video = SceneVideo(scene, Path(path), size, fps, duration, square or max(4, min(width, height) // 6))
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(video.path), mode="w") as container:
        stream = container.add_stream(video_codec(), rate=rate)
        assert isinstance(stream, av.VideoStream)  # a video codec's stream (PyAV types it as any stream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for k in range(video.num_frames):
            frame = av.VideoFrame.from_ndarray(video.render(k / fps), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))  # flush the encoder's delayed frames
    return video


def scene_video_records(n: int, seed: int, folder: str | os.PathLike[str], *,
                        task_types: Sequence[str] = ("multiple_choice",), objects: tuple[int, int] = (3, 4),
                        frames: tuple[int, int] = (2, 4), size: tuple[int, int] = (64, 48), fps: float = 8.0,
                        duration: float | None = 2.0) -> list[Record]:
    """`n` records, each with its own video in `folder` (`<id>.mp4`), the generator's question on the
    scene and its graph in the reference (positions in metres, one entry per frame when it moves).
    `objects` and `frames` are inclusive ranges; the categories are those with fixed colours."""
    for task_type in task_types:
        if task_type not in VIDEO_TASK_TYPES:
            raise ValueError(f"synthetic video tasks have no {task_type!r} (only {', '.join(VIDEO_TASK_TYPES)})")
    Path(folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        n_frames = int(rng.integers(frames[0], frames[1] + 1))
        scene = generate_scene(rng, n_objects=int(rng.integers(objects[0], objects[1] + 1)), n_frames=n_frames,
                               dim=2, moving=n_frames > 1, setting="indoor", categories=CATEGORIES)
        task = generate_task(rng, str(task_types[int(rng.integers(len(task_types)))]), True, scene)
        record_id = f"vid{seed}-{i}"
        path = Path(folder) / f"{record_id}.mp4"
        write_scene_video(scene, path, size=size, fps=fps, duration=duration)
        question, _, _ = task.question.partition(" Options: ")  # the record carries the options itself
        records.append(Record(id=record_id, question=question, options=task.reference.get("options"),
                              video=str(path), reference=task.reference))
    return records
