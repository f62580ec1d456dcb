"""The reference (ground truth) of one item, validated with pydantic (reward-spec section 3, last part).

A reference that breaks the spec is the client's bug: `validate_reference` raises `InvalidReference`
whose message names the field. Validated references are cached by their canonical JSON, because a
GRPO step sends the same reference with every rollout of a prompt.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal, get_args

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from reward_service.errors import GraphError, InvalidReference
from reward_service.graph import RelationGraph, frame_number, read_graph

# The task types, listed once: the reference model, the answer-scorer registry, the metrics' labels,
# the wire schema and the generator all read them from here.
TaskType = Literal["multiple_choice", "numerical", "temporal_iou", "box_iou", "track_iou"]
TASK_TYPES: tuple[str, ...] = get_args(TaskType)
OPTION_LETTERS = "ABCDEFGHIJ"
MAX_TRACK_FRAMES = 256
# api.md: a reference nested deeper than 64 levels (the reference object itself is level 1) or over 1 MiB
# of JSON is invalid, extra keys included. Unbounded, a deep one broke pickle on its way to a worker.
MAX_REFERENCE_DEPTH = 64
MAX_REFERENCE_BYTES = 1 << 20
# A JSON string takes at most 6 bytes per character (\u00XX) plus its quotes and a separator; a number,
# true, false or null at most 25 bytes: over these sums the exact size is measured.
_STRING_BYTES, _SCALAR_BYTES = 6, 25




def _finite(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x)


def _box(value: Any, sizes: tuple[int, ...]) -> list[float]:
    if not isinstance(value, list) or len(value) not in sizes or not all(_finite(x) for x in value):
        raise ValueError(f"must be a list of {' or '.join(map(str, sizes))} finite numbers")
    half = len(value) // 2
    if any(value[i + half] <= value[i] for i in range(half)):
        raise ValueError("box max must be above its min on every axis")
    return [float(x) for x in value]


def _check_answer(task_type: str, answer: Any, options: list[str] | None) -> Any:
    if task_type == "multiple_choice":
        letters = OPTION_LETTERS[: len(options)] if options else OPTION_LETTERS
        if not isinstance(answer, str) or answer.strip().upper() not in letters or not answer.strip():
            raise ValueError(f"must be one option letter of {letters}")
        return answer.strip().upper()
    if task_type == "numerical":
        if not _finite(answer):
            raise ValueError("must be a finite number")
        return float(answer)
    if task_type == "temporal_iou":
        if not isinstance(answer, list) or len(answer) != 2 or not all(_finite(x) for x in answer):
            raise ValueError("must be [start, end], two finite numbers")
        if answer[0] > answer[1]:
            raise ValueError("start must not be after end")
        return [float(x) for x in answer]
    if task_type == "box_iou":
        return _box(answer, (4, 6))
    if not isinstance(answer, Mapping) or not answer:
        raise ValueError("must be an object of frame keys to 2D boxes, with at least one frame")
    if len(answer) > MAX_TRACK_FRAMES:
        raise ValueError(f"more than {MAX_TRACK_FRAMES} frames")
    track: dict[int, list[float]] = {}
    for key, box in answer.items():
        number = frame_number(key)
        if number is None or number in track:
            raise ValueError(f"frame key {key!r} has no digit or repeats a frame number")
        try:
            track[number] = _box(box, (4,))
        except ValueError as exc:
            raise ValueError(f"frame {key!r}: {exc}") from None
    return track


class Reference(BaseModel):
    """Ground truth of one item. Extra keys (question text, video path, ...) are allowed and ignored."""

    model_config = ConfigDict(extra="allow", frozen=True)

    task_type: TaskType
    options: list[str] | None = None
    answer: Any
    graph: Any = None
    graph_scale: float | None = None

    @field_validator("answer")
    @classmethod
    def _answer(cls, answer: Any, info: Any) -> Any:
        task_type = info.data.get("task_type")
        if task_type is None:  # task_type itself failed; that error is reported
            return answer
        return _check_answer(task_type, answer, info.data.get("options"))

    @field_validator("options")
    @classmethod
    def _options(cls, options: list[str] | None) -> list[str] | None:
        if options is not None and not 1 <= len(options) <= len(OPTION_LETTERS):
            raise ValueError(f"must hold 1 to {len(OPTION_LETTERS)} options")
        return options

    @field_validator("graph_scale", mode="before")
    @classmethod
    def _scale(cls, scale: Any) -> Any:
        if scale is not None and not (_finite(scale) and scale > 0):
            raise ValueError("must be a positive finite number")
        return scale

    @field_validator("graph")
    @classmethod
    def _graph_check(cls, graph: Any) -> Any:
        if graph is None:
            return None
        try:
            parsed = read_graph(graph, strict=True)
        except GraphError as exc:
            raise ValueError(str(exc)) from None
        if len(set(map(len, parsed.positions))) > 1:
            raise ValueError("graph must use one dimension (2 or 3) throughout")
        if 0 in parsed.sizes:
            raise ValueError("graph: every frame needs at least one node")
        return parsed

    @property
    def relation_graph(self) -> RelationGraph | None:
        graph = self.graph
        return graph if isinstance(graph, RelationGraph) else None


# With OPT_INDENT_2 every element stands on a line of its own, indented two spaces per container around it,
# and a newline inside a string is written as the two characters \n: a container nested deeper than the
# limit stands on a line indented by at least this, after a newline.
_TOO_DEEP_INDENT = b"\n" + b" " * (2 * MAX_REFERENCE_DEPTH)


def reference_bounds_error(reference: Any) -> str | None:
    """Why `reference` (parsed JSON) is over api.md's bounds of depth and size, or None when it is not.

    The service checks every request's references before queueing them, on its one event-loop thread, so
    the common case is settled in C: `reference` written with indentation proves both bounds at once
    when the text is no longer than the size limit (indentation only adds to the compact size) and no
    line is indented as deep as the depth limit (`_TOO_DEEP_INDENT`). 2.0 us a reference against 5.8 to
    6.3 us for the walk (`bounds_error_walk`) on the standard mix's first 512 references (2026-11-30),
    which answers every other case, so the answer is always the walk's
    (tests/reward_service/scoring/test_reference_bounds.py checks the two agree)."""
    try:
        text = orjson.dumps(reference, option=orjson.OPT_INDENT_2)
    except TypeError:  # deeper than orjson writes, or not JSON (an integer past 64 bits)
        return bounds_error_walk(reference)
    if len(text) <= MAX_REFERENCE_BYTES and _TOO_DEEP_INDENT not in text:
        return None
    return bounds_error_walk(reference)


def bounds_error_walk(reference: Any) -> str | None:
    """`reference_bounds_error` by one walk over the lists and objects, iterative (no recursion to
    exhaust); the exact size is only measured when a cheap upper bound of it passes the limit."""
    stack: list[tuple[Any, int]] = [(reference, 1)]
    estimate = 0
    while stack:
        value, depth = stack.pop()
        if depth > MAX_REFERENCE_DEPTH:
            return f"reference: nested deeper than {MAX_REFERENCE_DEPTH} levels"
        if type(value) is dict:
            for key in value:
                estimate += _STRING_BYTES * len(key) + 4
            values: Any = value.values()
        else:
            values = value
        for child in values:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
            elif kind is str:
                estimate += _STRING_BYTES * len(child) + 3
            else:
                estimate += _SCALAR_BYTES
    if estimate > MAX_REFERENCE_BYTES:
        try:
            size = len(orjson.dumps(reference))
        except TypeError:  # not JSON (an integer past 64 bits): the model names the field
            return None
        if size > MAX_REFERENCE_BYTES:
            return f"reference: {size} bytes of JSON, over the limit of {MAX_REFERENCE_BYTES}"
    return None


def _validate(reference: Any) -> Reference:
    if isinstance(reference, Reference):
        return reference
    if not isinstance(reference, Mapping):
        raise InvalidReference("reference: must be an object")
    bounds = reference_bounds_error(reference)
    if bounds is not None:
        raise InvalidReference(bounds)
    try:
        return Reference.model_validate(reference)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in ("reference", *err["loc"]))
            parts.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
        raise InvalidReference("; ".join(parts)) from None


@lru_cache(maxsize=4096)
def _validate_cached(key: bytes) -> Reference:
    return _validate(orjson.loads(key))


def canonical_json(value: Any) -> bytes | None:
    """`value` as JSON with sorted keys (equal values, equal bytes); None if it is not serialisable
    (e.g. an integer past 64 bits)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None


def validate_reference(reference: Any) -> Reference:
    """A validated `Reference`; raises `InvalidReference` naming the field. Cached by canonical JSON."""
    if isinstance(reference, Reference):
        return reference
    key = canonical_json(reference)
    if key is None:  # not serialisable: validate without the cache
        return _validate(reference)
    if b"null" in key or b"NaN" in key:
        # orjson writes NaN and infinities as null, so a key holding null could stand for either:
        # validate directly, never from a cache entry that may have been made for the other.
        return _validate(reference)
    # The cache keeps the key: an exact-size copy, as orjson's bytes sit in allocations of 4 KB and more.
    return _validate_cached(bytes(memoryview(key)))
