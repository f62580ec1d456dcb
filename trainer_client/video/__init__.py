"""Video frames for the trainer: uniform sampling with timestamps, Qwen2-VL's pixel budget, clear
errors for bad videos, and Qwen2.5-VL's video inputs built without torchvision.

    frames = sample_frames("clip.mp4", 16, max_pixels=360 * 420)      # or a folder, or a list of images
    frames.pixels.shape, frames.timestamps, frames.metadata()         # (16, H, W, 3) uint8; seconds; vLLM's
    inputs = qwen2_5_vl_video_inputs(frames)                          # pixel_values_videos, video_grid_thw, ...

Modules: `frames` (`Frames`, `VideoError`, the sampling rule, `smart_resize`), `decode` (video files,
PyAV), `images` (frame images), `sample` (`sample_frames`, records, `VideoLoader`), `qwen` (patches and
prompt placeholders). Needs the `[trainer]` extra (PyAV, Pillow, torch).
"""

from trainer_client.video.frames import (
    VIDEO_MAX_PIXELS,
    VIDEO_MIN_PIXELS,
    Frames,
    VideoError,
    smart_resize,
    uniform_indices,
)
from trainer_client.video.qwen import expand_video_tokens, qwen2_5_vl_video_inputs, video_token_counts
from trainer_client.video.sample import VideoLoader, load_record_frames, sample_frames

__all__ = [
    "VIDEO_MAX_PIXELS",
    "VIDEO_MIN_PIXELS",
    "Frames",
    "VideoError",
    "VideoLoader",
    "expand_video_tokens",
    "load_record_frames",
    "qwen2_5_vl_video_inputs",
    "sample_frames",
    "smart_resize",
    "uniform_indices",
    "video_token_counts",
]
