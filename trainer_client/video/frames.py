"""What a sampled video is once decoded (`Frames`), how its frames are chosen (`uniform_indices`) and
sized (`smart_resize`, `resize_frames`), and the one error every loader raises (`VideoError`).

Frame choice: N indices evenly spaced over the source's frames, the first and the last included,
rounded to the nearest frame (`round(linspace(0, total - 1, N))`). This is the rule of qwen-vl-utils,
which fed Qwen2.5-VL its videos in training and which Video-R1 uses; vLLM's default loader takes the
same points rounded down. Including both ends matters here: a motion question ("in which direction
does the dog move?") is decided by where things start and where they end. (transformers' own
`Qwen2VLVideoProcessor.sample_frames` takes `floor(i * total / N)` instead, which never reaches the last
frame; we sample before the processor and turn its sampling off.)

Too short a source is an error, never padded: with N at most the frame count the rounded indices are
distinct, and with more the processors refuse too (transformers: "Video can't be sampled. The
inferred `num_frames` exceeds `total_num_frames`"; qwen-vl-utils: "nframes should in interval
[FRAME_FACTOR, total_frames]"). The only repeated frame in the pipeline is the processors' own
temporal padding of an odd count (see `qwen`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

# Qwen2-VL's video processor's defaults (transformers `Qwen2VLVideoProcessor.size`: shortest_edge
# 128 * 28 * 28, longest_edge 768 * 28 * 28), the same as qwen-vl-utils' VIDEO_MIN/MAX_PIXELS: frames
# sized with these come out of the processor at the size they went in.
VIDEO_MIN_PIXELS = 128 * 28 * 28
VIDEO_MAX_PIXELS = 768 * 28 * 28
MAX_ASPECT_RATIO = 200  # smart_resize refuses frames more elongated than this, as the processors do


class VideoError(Exception):
    """A video that cannot be used: missing, unreadable, without a video stream, or too short.

    The message names the dataset item (when known) and the file, so a failure in the middle of a run
    points at the line to fix; `item_id`, `source` and `reason` are kept for counting and reports.
    """

    def __init__(self, item_id: str | None, source: str, reason: str) -> None:
        self.item_id = item_id
        self.source = source
        self.reason = reason
        where = f"item {item_id!r}: {source}" if item_id is not None else source
        super().__init__(f"{where}: {reason}")

    def for_item(self, item_id: str) -> VideoError:
        """The same error naming the dataset item (loaders below the dataset do not know it)."""
        return VideoError(item_id, self.source, self.reason)


@dataclass(frozen=True, eq=False)  # eq: arrays do not compare to one bool
class Frames:
    """Frames sampled from one video, at the size the model sees them.

    Qwen's processors and vLLM need of the source, beside the pixels: its frame rate (`fps`), its
    length in frames (`total_num_frames`), which frames were taken (`frames_indices`) and its length
    in seconds (`duration`). From these Qwen2.5-VL derives the sampled frame rate and so the seconds
    one temporal patch spans (`second_per_grid_ts`, its time positions), and Qwen3-VL the timestamps
    it writes into the prompt; vLLM refuses video frames that come without them. `metadata()` gives
    them under the names of transformers' `VideoMetadata` and vLLM's video loaders.
    """

    pixels: np.ndarray  # (T, H, W, 3) uint8 RGB, read-only
    timestamps: tuple[float, ...]  # seconds from the source's first frame, one per sampled frame
    indices: tuple[int, ...]  # each sampled frame's index among the source's frames (presentation order)
    source_fps: float  # the source's average frame rate (frames per second)
    duration: float  # the source's length in seconds
    total_frames: int  # frames in the source
    source: str  # the file or folder, for messages
    backend: str = "pyav"  # what decoded it: "pyav" (a video file) or "pil" (frame images)

    def __post_init__(self) -> None:
        shape = self.pixels.shape
        if self.pixels.dtype != np.uint8 or len(shape) != 4 or shape[3] != 3:
            raise ValueError(f"Frames.pixels must be (T, H, W, 3) uint8 RGB, got {self.pixels.dtype} {shape}")
        if not len(self.timestamps) == len(self.indices) == shape[0]:
            raise ValueError(f"{shape[0]} frames but {len(self.timestamps)} timestamps and {len(self.indices)} indices")
        self.pixels.setflags(write=False)  # frozen all the way: a cached sample cannot be edited in place

    @property
    def num_frames(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of every frame."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[2])

    @property
    def sampled_fps(self) -> float:
        """Frames per second of the sample, as transformers' `VideoMetadata.sampled_fps` computes it."""
        return len(self.indices) / self.total_frames * self.source_fps

    def metadata(self) -> dict[str, Any]:
        """The source's description as transformers' `VideoMetadata` fields and vLLM 0.33's video
        metadata keys name it; `VideoMetadata(**frames.metadata())` builds."""
        return {"fps": self.source_fps, "duration": self.duration, "total_num_frames": self.total_frames,
                "frames_indices": list(self.indices), "video_backend": self.backend}


def uniform_indices(total: int, num_frames: int) -> list[int]:
    """`num_frames` indices evenly spaced over `total` frames, first and last included (module doc)."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    if num_frames > total:
        raise ValueError(f"{total} frames, fewer than the {num_frames} asked (frames are never repeated)")
    # np.round rounds halves to even, as torch.round in qwen-vl-utils does: the same frames, exactly.
    return [int(i) for i in np.round(np.linspace(0, total - 1, num_frames))]


def smart_resize(height: int, width: int, *, factor: int = 28, min_pixels: int = VIDEO_MIN_PIXELS,
                 max_pixels: int = VIDEO_MAX_PIXELS) -> tuple[int, int]:
    """(height, width) for a frame under Qwen2-VL's pixel budget: both multiples of `factor`
    (patch 14 x merge 2), area within [min_pixels, max_pixels] where rounding allows, aspect kept.

    Our own statement of transformers' `smart_resize` (qwen2_vl image processing), checked against it
    in the tests: round each side to the nearest multiple; if that is over budget scale both sides by
    the same factor and round down, if under it scale up and round up.
    """
    if height < 1 or width < 1:
        raise ValueError(f"empty frame: {height}x{width}")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(f"aspect ratio over {MAX_ASPECT_RATIO}: {height}x{width}")
    h, w = round(height / factor) * factor, round(width / factor) * factor
    if h * w > max_pixels:
        scale = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / scale / factor) * factor)
        w = max(factor, math.floor(width / scale / factor) * factor)
    elif h * w < min_pixels:
        scale = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * scale / factor) * factor
        w = math.ceil(width * scale / factor) * factor
    return h, w


def resize_frames(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Every frame resized to (height, width) with PIL's bicubic filter.

    PIL bicubic on uint8 is exactly what transformers' PIL-backend Qwen2-VL image processor does (the
    tests compare the two); its torchvision-backend video processor uses torchvision's antialiased
    bicubic, which approximates PIL's but is not bit-exact. Frames already at the size are returned as
    they are, and torchvision's resize does the same: a frame sized here passes the processor untouched.
    """
    if pixels.shape[1:3] == (height, width):
        return pixels
    out = np.empty((pixels.shape[0], height, width, 3), dtype=np.uint8)
    for i, frame in enumerate(pixels):
        out[i] = np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.BICUBIC))
    return out
