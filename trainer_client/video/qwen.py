"""Qwen2.5-VL's video inputs built from sampled frames, without its video processor.

Why this exists: in transformers 5.x the Qwen2-VL video processor (which Qwen2.5-VL's processor uses
for videos) is torchvision code: `transformers/models/qwen2_vl/video_processing_qwen2_vl.py` starts with
`import torchvision.transforms.v2.functional as tvF`, so on a machine without torchvision importing it
raises `ModuleNotFoundError: No module named 'torchvision'`, and `transformers.Qwen2VLVideoProcessor` is
a placeholder whose construction raises `ImportError: Qwen2VLVideoProcessor requires the Torchvision
library` (both seen with transformers 5.10). Our CPU machines install torch 2.13.0's CPU build and no
torchvision (its wheels do not import beside that build). So for the transformers engine the patches
are built here, in torch; on GPU nodes vLLM runs the processor itself, given `Frames` and their
metadata. The tests compare this with the processor where it imports, and always with transformers'
PIL-backend Qwen2-VL image processor (no torchvision), whose patch layout is the same for one frame.

What the processor does to frames already sized (sides multiples of patch x merge; its own resize is
then the identity), and so what this does:
  1. rescale by 1/255 and normalise per channel with OpenAI CLIP's mean and std;
  2. pad the frame count to a multiple of `temporal_patch_size` by repeating the last frame;
  3. cut into patches of temporal_patch_size x patch_size x patch_size and order them so that the
     merge_size x merge_size patches that the model merges into one token are consecutive rows:
     rows by (t, h // merge, w // merge, h % merge, w % merge), each row by (channel, t, y, x).
`second_per_grid_ts` is temporal_patch_size / sampled fps, the seconds one temporal patch spans, as
Qwen2.5-VL's processor computes it from the metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from trainer_client.video.frames import Frames

# OpenAI CLIP's normalisation, which Qwen2-VL's processors use (transformers' OPENAI_CLIP_MEAN / _STD).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
VIDEO_TOKEN = "<|video_pad|>"


def _patches(frames: Frames, patch_size: int, temporal_patch_size: int, merge_size: int,
             mean: torch.Tensor, std: torch.Tensor, rescale: float) -> tuple[torch.Tensor, list[int]]:
    height, width = frames.size
    factor = patch_size * merge_size
    if height % factor or width % factor:
        raise ValueError(f"{frames.source}: frames of {height}x{width} are not multiples of {factor} "
                         "(sample them with a pixel budget: sample_frames(..., max_pixels=...))")
    video = torch.from_numpy(frames.pixels.copy()).permute(0, 3, 1, 2).to(torch.float32)  # (T, C, H, W)
    video = (video * rescale - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    if pad := -video.shape[0] % temporal_patch_size:
        video = torch.cat([video, video[-1:].expand(pad, -1, -1, -1)])
    grid_t, grid_h, grid_w = video.shape[0] // temporal_patch_size, height // patch_size, width // patch_size
    video = video.reshape(grid_t, temporal_patch_size, 3, grid_h // merge_size, merge_size, patch_size,
                          grid_w // merge_size, merge_size, patch_size)
    # (t, tp, c, hb, hm, py, wb, wm, px) -> (t, hb, wb, hm, wm, c, tp, py, px): rows, then one row's values.
    video = video.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    rows = video.reshape(grid_t * grid_h * grid_w, 3 * temporal_patch_size * patch_size * patch_size)
    return rows, [grid_t, grid_h, grid_w]


def qwen2_5_vl_video_inputs(frames: Frames | Sequence[Frames], *, patch_size: int = 14, temporal_patch_size: int = 2,
                            merge_size: int = 2, image_mean: Sequence[float] = CLIP_MEAN,
                            image_std: Sequence[float] = CLIP_STD, rescale: float = 1 / 255) -> dict[str, Any]:
    """What Qwen2.5-VL's processor gives the model for these videos: `pixel_values_videos` (rows of
    patches, float32, the videos one after another), `video_grid_thw` (int64, one (t, h, w) per video)
    and `second_per_grid_ts` (float32, one per video)."""
    videos = [frames] if isinstance(frames, Frames) else list(frames)
    if not videos:
        raise ValueError("no videos")
    mean = torch.tensor(image_mean, dtype=torch.float32)
    std = torch.tensor(image_std, dtype=torch.float32)
    built = [_patches(v, patch_size, temporal_patch_size, merge_size, mean, std, rescale) for v in videos]
    return {"pixel_values_videos": torch.cat([rows for rows, _ in built]),
            "video_grid_thw": torch.tensor([grid for _, grid in built], dtype=torch.int64),
            # A tensor, as the processor returns it with return_tensors="pt": generate() with
            # num_return_sequences > 1 splits and repeats it per prompt, which fails on a list.
            "second_per_grid_ts": torch.tensor([temporal_patch_size / v.sampled_fps for v in videos],
                                               dtype=torch.float32)}


def video_token_counts(video_grid_thw: torch.Tensor, merge_size: int = 2) -> list[int]:
    """Placeholder tokens per video in the prompt: one per merged group of merge_size**2 patches."""
    return [int(t * h * w) // merge_size**2 for t, h, w in video_grid_thw.tolist()]


def expand_video_tokens(text: str, video_grid_thw: torch.Tensor, *, merge_size: int = 2,
                        video_token: str = VIDEO_TOKEN) -> str:
    """`text` with its k-th video token repeated as many times as video k has placeholders, as
    Qwen2.5-VL's processor expands it (the chat template writes one per video)."""
    counts = video_token_counts(video_grid_thw, merge_size)
    parts = text.split(video_token)
    if len(parts) - 1 != len(counts):
        raise ValueError(f"the prompt has {len(parts) - 1} {video_token} tokens for {len(counts)} videos")
    out = [parts[0]]
    for count, rest in zip(counts, parts[1:], strict=True):
        out.append(video_token * count + rest)
    return "".join(out)
