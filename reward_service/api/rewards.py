"""POST /v1/rewards: score a batch of rollouts (api.md)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter

from reward_service.api.body import invalid, invalid_references, parse_model
from reward_service.api.docs import add_scoring_route
from reward_service.api.request import ScoringRequest, read_valid_request
from reward_service.schemas import RewardsRequest, RewardsResponse
from reward_service.scoring import ConfigError, RewardConfig
from reward_service.scoring.advantages import group_advantages
from reward_service.service.pipeline import InvalidReferences, RewardService
from reward_service.version import SCORER_VERSION

router = APIRouter()


def _check_request(req: ScoringRequest) -> None:
    """What the schema cannot say: unique ids, and group ids when advantages are asked for."""
    issues: list[tuple[list[str | int], str, str]] = []
    if len(req.ids) > 1 and len(set(req.ids)) < len(req.ids):
        seen: set[str] = set()
        for i, item_id in enumerate(req.ids):
            if item_id in seen:
                issues.append((["items", i, "id"], f"duplicate id {item_id!r}", "duplicate_id"))
            seen.add(item_id)
    if req.advantages is not None:
        issues += [(["items", i, "group_id"], f"advantages '{req.advantages}' need a group_id on every item",
                    "missing_group_id") for i, group_id in enumerate(req.group_ids) if group_id is None]
    if issues:
        issues.sort(key=lambda issue: issue[0][1])
        loc, msg, _ = issues[0]
        raise invalid(f"item {loc[1]}: {msg}", issues)


def _resolve_config(service: RewardService, req: ScoringRequest) -> RewardConfig:
    try:
        return service.resolve_config(req.config)
    except ConfigError as exc:
        raise invalid(f"invalid config: {exc}", [(["config"], str(exc), "config_error")]) from None


async def score_rewards(service: RewardService, data: Any, started: float) -> bytes:
    """The 200 body for a /v1/rewards request's JSON `data`, within the request deadline counted from
    `started` (monotonic clock); a ServiceError for a request that gets another answer."""
    req = read_valid_request(data) or ScoringRequest.of(parse_model(RewardsRequest, data))
    del data  # the request's values live on in `req`; the rest can go now
    _check_request(req)
    config = _resolve_config(service, req)
    try:
        batch = await service.score(req.items, config, req.explain, started)
    except InvalidReferences as exc:
        raise invalid_references(exc.errors, lambda i: ["items", i, "reference"],
                                 lambda i: f"item {i} (id {req.ids[i]!r})") from None
    results: list[dict[str, Any]] = batch.results  # type: ignore[assignment]  # all filled by score

    advantages: list[float | None]
    if req.advantages is not None:
        groups = [group_id or "" for group_id in req.group_ids]
        advantages = group_advantages([r["reward"] for r in results], groups, req.advantages)
    else:
        advantages = [None] * len(results)
    out: list[dict[str, Any]] = [
        {"id": item_id, "group_id": group_id, "status": r["status"], "mask": r["mask"], "reward": r["reward"],
         "components": r["components"], "advantage": adv, "cached": cached, "diagnostics": r["diagnostics"]}
        for item_id, group_id, r, adv, cached in zip(req.ids, req.group_ids, results, advantages, batch.cached,
                                                     strict=True)
    ]
    return orjson.dumps({"reward_config_id": config.id, "scorer_version": SCORER_VERSION, "results": out})


add_scoring_route(router, "/v1/rewards", "post_rewards", "Score a batch of rollouts", RewardsRequest, RewardsResponse,
                  score_rewards, "items")
