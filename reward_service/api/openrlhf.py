"""POST /get_reward: OpenRLHF's remote reward protocol (api.md), on the same scoring path as /v1/rewards.

The protocol has no way to say "not scored", and OpenRLHF 0.11 stops its run after five failed tries
of a request, so two kinds of failure are told apart (api.md):
* the service's own state (not ready, draining, over its queue limit, a worker lost with no item to
  blame, the request's deadline spent in the queue) is a 503 or 429 with Retry-After: a retry cures it;
* an item that cannot be scored for a reason of its own (its deadline passed, the scorer failed on
  it) answers 200 with reward and score 0.0 and `extra_logs.masked` 1.0, and is counted as masked
  (`reward_service_items_total` with status timeout or error): said in OpenRLHF's logs and ours,
  never silent, and one pathological rollout does not stop a training run.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter

from reward_service.api.body import invalid, invalid_references, parse_model
from reward_service.api.docs import add_scoring_route
from reward_service.schemas import OpenRLHFRequest, OpenRLHFResponse
from reward_service.scoring import COMPONENTS
from reward_service.service.errors import Unavailable
from reward_service.service.pipeline import InvalidReferences, RewardService

router = APIRouter()


def completion_of(query: str, prompt: str) -> str:
    """The response part of `query`: without the prompt prefix, or all of it when it lacks the prefix."""
    return query[len(prompt):] if query.startswith(prompt) else query


def _labels(req: OpenRLHFRequest) -> list[Any]:
    n = len(req.query)
    if len(req.prompts) != n or len(req.labels) != n:
        raise invalid(
            f"query, prompts and labels must have the same length, got {n}, {len(req.prompts)}, {len(req.labels)}",
            [([], "query, prompts and labels differ in length", "length_mismatch")],
        )
    references: list[Any] = []
    issues: list[tuple[list[str | int], str, str]] = []
    for i, label in enumerate(req.labels):
        try:
            references.append(orjson.loads(label))
        except orjson.JSONDecodeError as exc:
            references.append(None)
            issues.append((["labels", i], f"not a JSON reference: {exc}", "invalid_label"))
    if issues:
        raise invalid(f"labels[{issues[0][0][1]}]: {issues[0][1]}", issues)
    return references


async def score_openrlhf(service: RewardService, data: Any, started: float) -> bytes:
    """The 200 body for a /get_reward request's JSON `data`, within the request deadline counted from
    `started` (monotonic clock); a ServiceError for a request that gets another answer."""
    req = parse_model(OpenRLHFRequest, data)
    del data
    references = _labels(req)
    items = [(completion_of(q, p), ref, None) for q, p, ref in zip(req.query, req.prompts, references, strict=True)]
    try:
        batch = await service.score(items, service.default_config, False, started)
    except InvalidReferences as exc:
        raise invalid_references(exc.errors, lambda i: ["labels", i], lambda i: f"labels[{i}]") from None
    results: list[dict[str, Any]] = batch.results  # type: ignore[assignment]  # all filled by score

    retryable = sum(1 for r in results if r["mask"] and r["diagnostics"].get("retryable"))
    if retryable:
        raise Unavailable(f"{retryable} of {len(results)} items could not be scored for now; retry",
                          retry_after_s=service.pool.retry_after_s(), code="not_scored")
    rewards = [0.0 if r["mask"] else float(r["reward"]) for r in results]
    body = {
        "rewards": rewards,
        "scores": [min(1.0, max(0.0, r)) for r in rewards],
        # The protocol's logs are lists of floats: a component that does not apply (null) is logged 0.0,
        # and `masked` says which rewards are a stand-in for an item that could not be scored.
        "extra_logs": {**{c: [float(r["components"][c] or 0.0) for r in results] for c in COMPONENTS},
                       "masked": [1.0 if r["mask"] else 0.0 for r in results]},
    }
    return orjson.dumps(body)


add_scoring_route(router, "/get_reward", "get_reward", "OpenRLHF remote reward", OpenRLHFRequest, OpenRLHFResponse,
                  score_openrlhf, "query")
