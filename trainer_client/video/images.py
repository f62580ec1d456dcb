"""Uniformly sampled frames from frame images: a folder of them, or a list of paths.

A folder is read in natural order ("frame_2.jpg" before "frame_10.jpg", as a person numbers frames),
a list in the order given (the dataset's order is the time order). Images have no clock, so the frame
rate is the caller's (`fps`, 1 frame per second unless the dataset says otherwise): frame i is at i / fps
seconds and the video lasts n / fps. Only the sampled images are opened.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from trainer_client.video.frames import Frames, VideoError, uniform_indices

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
DEFAULT_IMAGE_FPS = 1.0


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders the digit runs in a name by value: "f2" < "f10"."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name) if part)


def frame_images(folder: Path) -> list[Path]:
    """The image files directly in `folder`, in natural order; `VideoError` when there are none."""
    images = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                    key=lambda p: natural_key(p.name))
    if not images:
        raise VideoError(None, str(folder), f"no frame images in the folder ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return images


def _read_image(path: Path) -> np.ndarray:
    if not path.is_file():
        raise VideoError(None, str(path), "no such frame image")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise VideoError(None, str(path), f"not a readable image ({exc})") from None


def read_images(paths: Sequence[Path], num_frames: int, *, fps: float = DEFAULT_IMAGE_FPS,
                source: str | None = None) -> Frames:
    """`num_frames` uniformly sampled images of `paths` (the whole video, in time order)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    label = source or (os.path.commonpath([str(p) for p in paths]) if paths else "<no frames>")
    if not paths:
        raise VideoError(None, label, "an empty list of frame images")
    if num_frames > len(paths):
        raise VideoError(None, label, f"{len(paths)} frame images, fewer than the {num_frames} asked "
                                      "(frames are never repeated)")
    indices = uniform_indices(len(paths), num_frames)
    pixels = [_read_image(paths[i]) for i in indices]
    shapes = {p.shape for p in pixels}
    if len(shapes) > 1:
        raise VideoError(None, label, f"frame images of different sizes: {sorted(shapes)}")
    return Frames(pixels=np.stack(pixels), timestamps=tuple(i / fps for i in indices), indices=tuple(indices),
                  source_fps=fps, duration=len(paths) / fps, total_frames=len(paths), source=label, backend="pil")
