"""Records into engine prompts: the one template (trainer_client.data.prompts), the chat form for
models that have a chat template, and the video's frames.

A record's video is decoded when its prompt is built (`VideoLoader`: 16 frames of a 10 s clip took
about half a second here), and the frames of the last few hundred records are kept, so evaluation
prompts and repeated training prompts are decoded once. A video that cannot be read stops the run,
or with `skip_bad_videos` the record is skipped and counted (`videos_skipped` in the metrics); it is
never replaced by another video.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from trainer_client.config import TrainConfig
from trainer_client.data import Record
from trainer_client.data.prompts import chat_messages, render_prompt
from trainer_client.rollout import EnginePrompt

log = logging.getLogger("trainer_client.prompting")

_KEEP_FRAMES = 256


class PromptBuilder:
    def __init__(self, config: TrainConfig, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.instructions = config.prompt_instructions
        self.chat = getattr(tokenizer, "chat_template", None) is not None
        self.loader: Any = None
        self._frames: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self.config = config

    def _video(self, record: Record) -> Any:
        if self.loader is None:
            from trainer_client.video import VideoLoader

            c = self.config
            self.loader = VideoLoader(c.video_frames, root=c.video_root, skip_bad=c.skip_bad_videos,
                                      max_pixels=c.video_max_pixels, min_pixels=c.video_min_pixels)
        key = (record.id, str(record.video))  # a held-out file may reuse a training id for another video
        if key in self._frames:
            self._frames.move_to_end(key)
            return self._frames[key]
        frames = self.loader(record)  # raises VideoError naming the record, or None when skipping
        self._frames[key] = frames  # a skipped video is remembered too: read, and counted, once
        if len(self._frames) > _KEEP_FRAMES:
            self._frames.popitem(last=False)
        return frames

    @property
    def videos_skipped(self) -> int:
        return len(self.loader.failures) if self.loader is not None else 0

    def build(self, record: Record) -> EnginePrompt | None:
        """The record's prompt, or None when its video cannot be read and bad videos are skipped."""
        frames = self._video(record) if record.video is not None else None
        if record.video is not None and frames is None:
            return None
        if not self.chat:
            if frames is not None:
                raise ValueError(f"record {record.id!r} has a video, but the model's tokenizer has no chat "
                                 "template to place it (a video model's tokenizer has one)")
            return EnginePrompt(render_prompt(record, instructions=self.instructions))
        text = self.tokenizer.apply_chat_template(chat_messages(record, with_video=frames is not None),
                                                  add_generation_prompt=True, tokenize=False)
        return EnginePrompt(text, {"video": frames} if frames is not None else None)
