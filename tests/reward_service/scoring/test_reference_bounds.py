"""The reference bounds (api.md: 64 levels, 1 MiB of JSON): the check in C (`reference_bounds_error`) always
answers as the walk (`bounds_error_walk`) does, at the edges of both bounds and with text that looks like
indentation inside strings."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from reward_service.scoring.reference import (
    MAX_REFERENCE_BYTES,
    MAX_REFERENCE_DEPTH,
    bounds_error_walk,
    reference_bounds_error,
)

TRICKY_TEXT = st.sampled_from(["", "[", "{", "]}", "\n" + " " * 200 + "[", "a\nb", "\\n  ", '"', "é", "\u2028"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                    TRICKY_TEXT, st.text(max_size=8))


def nest(value: Any, levels: int, as_object: bool) -> Any:
    for _ in range(levels):
        value = {"k": value, "s": "[[{\n"} if as_object else [value, "{\n"]
    return value


@st.composite
def references(draw: st.DrawFn) -> dict[str, Any]:
    """A reference whose deepest container sits just around the depth limit, by lists, objects or both."""
    levels = draw(st.integers(MAX_REFERENCE_DEPTH - 4, MAX_REFERENCE_DEPTH + 2))
    innermost = draw(st.one_of(st.just([]), st.just({}), st.lists(SCALARS, max_size=3),
                               st.dictionaries(st.text(max_size=3), SCALARS, max_size=3)))
    deep = nest(innermost, levels - 2, draw(st.booleans()))  # inside the reference and its "x" key's container
    extra = draw(st.dictionaries(st.text(max_size=4), SCALARS, max_size=4))
    return {"task_type": "multiple_choice", "answer": "B", **extra, "x": deep}


@settings(max_examples=400, deadline=None)
@given(references())
def test_the_check_in_c_answers_as_the_walk_around_the_depth_limit(reference: dict[str, Any]) -> None:
    assert reference_bounds_error(reference) == bounds_error_walk(reference)


def test_depth_64_passes_and_65_fails_by_lists_by_objects_and_by_an_empty_innermost_container() -> None:
    for as_object in (False, True):
        for innermost in ([], {}, [1], {"a": 1}):
            ok = {"task_type": "numerical", "answer": 1, "x": nest(innermost, MAX_REFERENCE_DEPTH - 2, as_object)}
            deep = {"task_type": "numerical", "answer": 1, "x": nest(innermost, MAX_REFERENCE_DEPTH - 1, as_object)}
            assert reference_bounds_error(ok) is None
            assert reference_bounds_error(deep) == f"reference: nested deeper than {MAX_REFERENCE_DEPTH} levels"


def test_the_size_limit_is_the_compact_json_size_even_when_indentation_would_pass_it() -> None:
    # Compact, just under 1 MiB; indented, far over it: the walk measures the exact compact size.
    numbers = [1] * ((MAX_REFERENCE_BYTES - 100) // 2)
    reference = {"task_type": "numerical", "answer": 1, "x": numbers}
    assert len(orjson.dumps(reference)) <= MAX_REFERENCE_BYTES < len(orjson.dumps(reference, option=orjson.OPT_INDENT_2))
    assert reference_bounds_error(reference) is None
    over = {**reference, "y": "z" * 200}
    assert reference_bounds_error(over) == bounds_error_walk(over)
    assert reference_bounds_error(over) is not None and "over the limit" in reference_bounds_error(over)


def test_what_orjson_cannot_write_is_left_to_the_walk() -> None:
    too_big = {"task_type": "numerical", "answer": 1, "x": [2**80]}
    assert reference_bounds_error(too_big) is None  # the model, not the bounds, names the field
    far_too_deep = {"task_type": "numerical", "answer": 1, "x": nest([], 300, False)}
    assert reference_bounds_error(far_too_deep) == f"reference: nested deeper than {MAX_REFERENCE_DEPTH} levels"
