"""The request fast path (schemas.read_valid_request) accepts only what the pydantic models accept, with
the same values: it may hand more to the models than needed, never less."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from reward_service.api.request import ScoringRequest, read_valid_request
from reward_service.schemas import RewardsRequest

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False), st.just(""), st.just("x" * 128),
    st.just("x" * 129), st.text(max_size=5), st.sampled_from(["grpo", "dr_grpo", "rloo", "ppo"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner,
                                                                                           max_size=2), max_leaves=4)
item_keys = st.sampled_from(["id", "group_id", "completion", "reference", "num_tokens", "extra"])
good_item = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=8), "completion": st.text(max_size=8),
     "reference": st.dictionaries(st.text(max_size=3), values, max_size=2)},
    optional={"group_id": st.none() | st.text(max_size=3), "num_tokens": st.none() | st.integers(0, 10)},
)
# Good items, and items with one key set to any value or added: the interesting boundary.
mutated_item = st.builds(lambda base, key, value: {**base, key: value}, good_item, item_keys, values)
items = st.lists(st.one_of(good_item, mutated_item, values), max_size=4)
requests = st.fixed_dictionaries(
    {"items": st.one_of(items, values)},
    optional={"config": st.one_of(st.none(), st.dictionaries(st.text(max_size=3), values, max_size=2), values),
              "advantages": values, "explain": values, "extra": values},
)


def model_or_none(data: Any) -> RewardsRequest | None:
    try:
        return RewardsRequest.model_validate(data)
    except ValidationError:
        return None


@settings(max_examples=800, deadline=None)
@given(st.one_of(requests, values))
def test_the_fast_path_never_accepts_what_the_models_refuse(data):
    fast = read_valid_request(data)
    if fast is not None:
        model = model_or_none(data)
        assert model is not None, data
        assert fast == ScoringRequest.of(model)


@settings(max_examples=200, deadline=None)
@given(st.lists(good_item, max_size=4), st.sampled_from([None, "grpo", "rloo"]), st.booleans())
def test_plain_valid_requests_take_the_fast_path(raw_items, advantages, explain):
    data = {"items": raw_items, "advantages": advantages, "explain": explain}
    fast = read_valid_request(data)
    assert fast is not None
    assert fast == ScoringRequest.of(RewardsRequest.model_validate(data))


@pytest.mark.parametrize("change", [
    {"num_tokens": True}, {"num_tokens": -1}, {"num_tokens": 1.0}, {"id": ""}, {"id": "x" * 129}, {"id": 7},
    {"completion": None}, {"reference": []}, {"group_id": 3}, {"extra": 1},
])
def test_what_the_models_refuse_is_left_to_them(change):
    data = {"items": [{"id": "a", "completion": "c", "reference": {"task_type": "numerical"}, **change}]}
    assert read_valid_request(data) is None
    assert model_or_none(data) is None
