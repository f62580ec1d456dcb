"""The prompt template, in one place: what the policy is asked to write (reward-spec section 1).

    <think> reasoning ... <graph> {"frames": {"0": {"chair_1": [x, y], ...}, ...}} </graph> ... </think>
    <answer> the answer, in the form its task type asks for </answer>

`render_prompt` gives the text prompt (instructions, question, options, answer form); `chat_messages`
the same as chat messages for instruction-tuned models, with the video as a content block. A model
trained from scratch (the CPU proof's tiny model) has no use for English instructions: it is given the
question and options only (`instructions=False`), and learns the format from its warm-up.
"""

from __future__ import annotations

from typing import Any

from reward_service.scoring.reference import OPTION_LETTERS
from trainer_client.data import Record

INSTRUCTIONS = (
    "Answer the question about the video. Think first, inside <think> </think>. While thinking, write the "
    "relation graph of the scene inside <graph> </graph>: JSON that maps each frame number to the objects "
    "in it and their positions, like {\"frames\": {\"0\": {\"chair_1\": [1.2, 0.4, 0.0], \"table\": [2.0, 1.1, "
    "0.0]}, \"8\": {...}}} (one name per object, the same name in every frame, positions in metres). Then "
    "write only the final answer inside <answer> </answer>."
)

ANSWER_FORMS = {
    "multiple_choice": "Answer with the letter of the correct option only, e.g. <answer>B</answer>.",
    "numerical": "Answer with one number only (no range), e.g. <answer>3.5</answer>.",
    "temporal_iou": "Answer with the time span as [start, end] in seconds, e.g. <answer>[2.0, 5.5]</answer>.",
    "box_iou": "Answer with the box as [x1, y1, x2, y2] (or [x1, y1, z1, x2, y2, z2] in 3D), e.g. "
               "<answer>[12, 40, 96, 130]</answer>.",
    "track_iou": "Answer with a JSON object from each frame number to the box [x1, y1, x2, y2] in that frame, "
                 "e.g. <answer>{\"0\": [12, 40, 96, 130], \"8\": [20, 41, 104, 131]}</answer>.",
}


def options_text(options: list[str]) -> str:
    return "Options: " + " ".join(f"{OPTION_LETTERS[i]}. {text}" for i, text in enumerate(options))


def render_prompt(record: Record, *, instructions: bool = True) -> str:
    """The text prompt of a record (the video, if any, goes to the engine beside it)."""
    parts = [INSTRUCTIONS] if instructions else []
    parts.append(record.question)
    if record.options:
        parts.append(options_text(record.options))
    if instructions:
        parts.append(ANSWER_FORMS[record.task_type])
    return "\n".join(parts)


def chat_messages(record: Record, *, with_video: bool = True) -> list[dict[str, Any]]:
    """System instructions, then the user turn: the video (when the record has one) and the question."""
    user: list[dict[str, Any]] = [{"type": "video"}] if with_video and record.video is not None else []
    question = render_prompt(record, instructions=False) + "\n" + ANSWER_FORMS[record.task_type]
    user.append({"type": "text", "text": question})
    return [{"role": "system", "content": [{"type": "text", "text": INSTRUCTIONS}]},
            {"role": "user", "content": user}]
