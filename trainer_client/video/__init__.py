"""Video frames for the trainer: uniform sampling with timestamps, Qwen2-VL's pixel budget, clear
errors for bad videos.

    frames = sample_frames("clip.mp4", 16, max_pixels=360 * 420)      # or a folder, or a list of images
    frames.pixels.shape, frames.timestamps, frames.metadata()         # (16, H, W, 3) uint8; seconds; vLLM's

Modules: `frames` (`Frames`, `VideoError`, the sampling rule, `smart_resize`), `decode` (video files,
PyAV), `images` (frame images), `sample` (`sample_frames`, records, `VideoLoader`). Needs the
`[trainer]` extra (PyAV, Pillow, torch).
"""

from trainer_client.video.frames import (
    VIDEO_MAX_PIXELS,
    VIDEO_MIN_PIXELS,
    Frames,
    VideoError,
    smart_resize,
    uniform_indices,
)
from trainer_client.video.sample import VideoLoader, load_record_frames, sample_frames

__all__ = [
    "VIDEO_MAX_PIXELS",
    "VIDEO_MIN_PIXELS",
    "Frames",
    "VideoError",
    "VideoLoader",
    "load_record_frames",
    "sample_frames",
    "smart_resize",
    "uniform_indices",
]
