"""`numerical`, `temporal_iou`, `box_iou` and `track_iou` answers (reward-spec section 2)."""

from __future__ import annotations

import math

from reward_service.errors import RelaxedJSONError, TooDeepError
from reward_service.graph import frame_number
from reward_service.parsing.numbers import NUMBER_WORDS, extract_numbers, has_digit
from reward_service.parsing.relaxed_json import JObject, loads_relaxed
from reward_service.scoring.reference import MAX_TRACK_FRAMES, Reference
from reward_service.scoring.registry import UNPARSABLE, AnswerScore, register

_THRESHOLDS = [0.50 + 0.05 * k for k in range(10)]


def mean_relative_accuracy(p: float, y: float) -> float:
    """VSI-Bench's MRA; with y = 0 only an exact 0 counts."""
    if y == 0:
        return 1.0 if p == 0 else 0.0
    err, tol = abs(p - y), 1e-9 * max(1.0, abs(y))
    return sum(err <= (1 - t) * abs(y) + tol for t in _THRESHOLDS) / 10


@register("numerical")
def score_numerical(prediction: str, reference: Reference) -> AnswerScore:
    values = set(extract_numbers(prediction, thousands=True))
    if not values and not has_digit(prediction):
        word = prediction.strip().lower().removesuffix(".")
        if word in NUMBER_WORDS:
            values = {float(NUMBER_WORDS[word])}
    if len(values) != 1:
        return AnswerScore(0.0, "answer_ambiguous" if values else "answer_unparsable")
    (p,) = values
    return AnswerScore(mean_relative_accuracy(p, reference.answer), None, p)


def interval_iou(s: float, e: float, s2: float, e2: float) -> float:
    union = max(e, e2) - min(s, s2)
    if union == 0:
        return 1.0 if (s, e) == (s2, e2) else 0.0
    return max(0.0, min(e, e2) - max(s, s2)) / union


@register("temporal_iou")
def score_temporal(prediction: str, reference: Reference) -> AnswerScore:
    numbers = extract_numbers(prediction)
    if len(numbers) != 2:
        return UNPARSABLE
    s2, e2 = numbers
    if s2 > e2 or not all(math.isfinite(x) for x in numbers):
        return AnswerScore(0.0, None, numbers)
    s, e = reference.answer
    return AnswerScore(interval_iou(s, e, s2, e2), None, numbers)


def box_iou(a: list[float], b: list[float]) -> float:
    """IoU of two axis-aligned boxes of the same dimension; 0 when `b` is degenerate."""
    half = len(a) // 2
    inter, vol_a, vol_b = 1.0, 1.0, 1.0
    for i in range(half):
        if not b[i + half] > b[i]:
            return 0.0
        inter *= max(0.0, min(a[i + half], b[i + half]) - max(a[i], b[i]))
        vol_a *= a[i + half] - a[i]
        vol_b *= b[i + half] - b[i]
    union = vol_a + vol_b - inter
    return inter / union if union > 0 and math.isfinite(union) else 0.0


@register("box_iou")
def score_box(prediction: str, reference: Reference) -> AnswerScore:
    numbers = extract_numbers(prediction)
    if len(numbers) != len(reference.answer):
        return UNPARSABLE
    return AnswerScore(box_iou(reference.answer, numbers), None, numbers)


def _track_box(value: object) -> list[float] | None:
    """A list of 4 finite numbers as floats, else None. `value` comes from the JSON parser, so exact types
    say it all: a JObject (a list subclass) is no box, a bool no number. A loop, not all() over a
    generator: this runs for every frame of every track answer (0.6 against 1.4 us a box)."""
    if type(value) is not list or len(value) != 4:
        return None
    for x in value:
        if (type(x) is not float and type(x) is not int) or not math.isfinite(x):
            return None
    return [float(x) for x in value]


@register("track_iou")
def score_track(prediction: str, reference: Reference) -> AnswerScore:
    try:
        value = loads_relaxed(prediction)
    except TooDeepError:
        return AnswerScore(0.0, "answer_too_large")
    except RelaxedJSONError:
        return UNPARSABLE
    if not isinstance(value, JObject):
        return UNPARSABLE
    if len(value) > MAX_TRACK_FRAMES:
        return AnswerScore(0.0, "answer_too_large")
    track: dict[int, object] = {}
    for key, box in value:
        number = frame_number(key)
        if number is not None:
            track.pop(number, None)  # of keys with the same number the later wins
            track[number] = box
    total = 0.0
    for number, ref_box in reference.answer.items():
        box = _track_box(track.get(number))
        total += box_iou(ref_box, box) if box is not None else 0.0
    return AnswerScore(total / len(reference.answer), None, {str(k): v for k, v in track.items()})
