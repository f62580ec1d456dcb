"""One entry point for every kind of video a record names, and the dataset-level loader.

`sample_frames` takes a video file, a folder of frame images or a list of image paths, samples N
frames uniformly and sizes them to Qwen2-VL's pixel budget. `load_record_frames` does it for a dataset
`Record` and names the record in its error. `VideoLoader` is what a trainer holds: it counts the
videos that failed and, with `skip_bad`, skips their items (logging each) instead of stopping the run;
it never trains on something else in their place (Video-R1 silently substitutes a fixed sample when a
video does not load, and so trains on the wrong video without anyone knowing).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from trainer_client.data import Record
from trainer_client.video.decode import read_video
from trainer_client.video.frames import (
    VIDEO_MAX_PIXELS,
    VIDEO_MIN_PIXELS,
    Frames,
    VideoError,
    resize_frames,
    smart_resize,
)
from trainer_client.video.images import DEFAULT_IMAGE_FPS, frame_images, read_images

log = logging.getLogger("trainer_client.video")

Source = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def sample_frames(source: Source, num_frames: int, *, max_pixels: int | None = VIDEO_MAX_PIXELS,
                  min_pixels: int = VIDEO_MIN_PIXELS, factor: int = 28, fps: float = DEFAULT_IMAGE_FPS) -> Frames:
    """`num_frames` frames sampled uniformly from `source` and resized as Qwen2-VL's `smart_resize`
    sizes them (sides multiples of `factor`, area within [min_pixels, max_pixels], aspect kept);
    `max_pixels=None` keeps the source's size. `fps` is the frame rate of frame images (a file has
    its own). Raises `VideoError` naming the source."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        frames = read_images(frame_images(path), num_frames, fps=fps, source=str(path)) if path.is_dir() \
            else read_video(path, num_frames)
    else:
        frames = read_images([Path(p) for p in source], num_frames, fps=fps)
    if max_pixels is None:
        return frames
    height, width = frames.size
    try:
        size = smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    except ValueError as exc:
        raise VideoError(None, frames.source, str(exc)) from None
    return dataclasses.replace(frames, pixels=resize_frames(frames.pixels, *size))


def _resolve(video: str | list[str], root: Path | None) -> Source:
    if root is None:
        return video
    if isinstance(video, str):
        return root / video  # an absolute path stays as it is: Path("/a") / "/b" is "/b"
    return [root / p for p in video]


def load_record_frames(record: Record, num_frames: int, *, root: str | os.PathLike[str] | None = None,
                       **sampling: int | float | None) -> Frames:
    """The frames of a record's video (relative paths under `root`); `VideoError` naming the record.
    `sampling`: `sample_frames`' keywords (max_pixels, min_pixels, factor, fps)."""
    if record.video is None:
        raise VideoError(record.id, "<none>", "the record has no video")
    try:
        return sample_frames(_resolve(record.video, Path(root) if root is not None else None), num_frames,
                             **sampling)  # type: ignore[arg-type]
    except VideoError as exc:
        raise exc.for_item(record.id) from None


class VideoLoader:
    """Frames for records, with every failure counted.

    Without `skip_bad` the first bad video raises its `VideoError` (naming the record and the file);
    with it, a bad video is logged, kept in `failures` and its record skipped (`None`).
    """

    def __init__(self, num_frames: int, *, root: str | os.PathLike[str] | None = None, skip_bad: bool = False,
                 max_pixels: int | None = VIDEO_MAX_PIXELS, min_pixels: int = VIDEO_MIN_PIXELS, factor: int = 28,
                 fps: float = DEFAULT_IMAGE_FPS) -> None:
        self.num_frames = num_frames
        self.root = root
        self.skip_bad = skip_bad
        self.sampling: dict[str, int | float | None] = {"max_pixels": max_pixels, "min_pixels": min_pixels,
                                                        "factor": factor, "fps": fps}
        self.loaded = 0
        self.failures: list[VideoError] = []

    def __call__(self, record: Record) -> Frames | None:
        try:
            frames = load_record_frames(record, self.num_frames, root=self.root, **self.sampling)
        except VideoError as exc:
            self.failures.append(exc)
            if not self.skip_bad:
                raise
            log.warning("skipped (%d videos failed so far): %s", len(self.failures), exc)
            return None
        self.loaded += 1
        return frames
