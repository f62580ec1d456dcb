"""The fast path that reads a valid POST /v1/rewards body into columns without building item models."""

from __future__ import annotations

from typing import Any, NamedTuple, cast, get_args

from reward_service.schemas import ID_MAX_CHARS, AdvantageMode, RewardItem, RewardsRequest


class ScoringRequest(NamedTuple):
    """A valid `RewardsRequest` as the route uses it: columns, with references as the client sent them."""

    ids: list[str]
    group_ids: list[str | None]
    items: list[tuple[str, dict[str, Any], int | None]]  # completion, reference, num_tokens
    config: dict[str, Any] | None
    advantages: AdvantageMode | None
    explain: bool

    @classmethod
    def of(cls, req: RewardsRequest) -> ScoringRequest:
        return cls([i.id for i in req.items], [i.group_id for i in req.items],
                   [(i.completion, i.reference, i.num_tokens) for i in req.items], req.config, req.advantages,
                   req.explain)


_REQUEST_KEYS = frozenset(RewardsRequest.model_fields)
_ITEM_KEYS = frozenset(RewardItem.model_fields)
_ADVANTAGE_MODES = frozenset(get_args(AdvantageMode))


def read_valid_request(data: Any) -> ScoringRequest | None:
    """`data` as a ScoringRequest when it is plainly valid, else None (then validate it with the model).

    Building and freeing 512 `RewardItem` models costs about half as much as parsing the request body:
    this checks the same rules on the plain JSON values and builds nothing. Measured on a 512-item
    GRPO body (2026-11-30, loaded 2-core machine): 0.2-0.5 ms against 3.0-3.7 ms for the models, about
    6 us per item of the service process's ~20. It is stricter than the models, never looser
    (tests/reward_service/api/test_api_schema_fast.py checks both on generated requests): anything
    unusual falls back to `RewardsRequest`, whose errors are the ones a client sees.
    """
    if type(data) is not dict or not _REQUEST_KEYS.issuperset(data):
        return None
    raw, config = data.get("items"), data.get("config")
    advantages, explain = data.get("advantages"), data.get("explain", False)
    if (type(raw) is not list or (config is not None and type(config) is not dict) or type(explain) is not bool
            or (advantages is not None and (type(advantages) is not str or advantages not in _ADVANTAGE_MODES))):
        return None
    ids: list[str] = []
    group_ids: list[str | None] = []
    items: list[tuple[str, dict[str, Any], int | None]] = []
    for item in raw:
        if type(item) is not dict or not _ITEM_KEYS.issuperset(item):
            return None
        item_id, completion, reference = item.get("id"), item.get("completion"), item.get("reference")
        group_id, num_tokens = item.get("group_id"), item.get("num_tokens")
        if (type(item_id) is not str or not 0 < len(item_id) <= ID_MAX_CHARS or type(completion) is not str
                or type(reference) is not dict or (group_id is not None and type(group_id) is not str)
                or (num_tokens is not None and (type(num_tokens) is not int or num_tokens < 0))):
            return None
        ids.append(item_id)
        group_ids.append(group_id)
        items.append((completion, reference, num_tokens))
    # The type as a string: `AdvantageMode | None` evaluated per call cost typing 3% of the service process.
    return ScoringRequest(ids, group_ids, items, config, cast("AdvantageMode | None", advantages), explain)
