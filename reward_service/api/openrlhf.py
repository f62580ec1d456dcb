"""POST /get_reward: OpenRLHF's remote reward protocol (api.md), on the same scoring path as /v1/rewards.

The protocol has no way to say "not scored", so a request with any item that would be masked
answers 503 with Retry-After: OpenRLHF retries, and a timeout never becomes a silent 0 reward.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from reward_service.api.body import check_references, invalid, parse_model, read_json
from reward_service.api.deps import ScoringServiceDep
from reward_service.api.docs import request_body, responses
from reward_service.api.schemas import OpenRLHFRequest, OpenRLHFResponse
from reward_service.core.errors import Unavailable
from reward_service.scoring import COMPONENTS

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


@router.post(
    "/get_reward",
    summary="OpenRLHF remote reward",
    response_model=OpenRLHFResponse,
    responses=responses(400, 401, 413, 422, 429, 500, 503),
    openapi_extra=request_body("OpenRLHFRequest"),
)
async def get_reward(request: Request, service: ScoringServiceDep) -> Response:
    req = parse_model(OpenRLHFRequest, await read_json(request, "query", service.settings.max_items))
    references = _labels(req)
    items = [(completion_of(q, p), ref, None) for q, p, ref in zip(req.query, req.prompts, references, strict=True)]
    batch = await service.score(items, service.default_config, False, request.scope["state"]["started"])
    check_references(batch.reference_errors(), lambda i: ["labels", i], lambda i: f"labels[{i}]")
    results: list[dict[str, Any]] = batch.results  # type: ignore[assignment]  # all filled by score

    masked = sum(1 for r in results if r["mask"])
    if masked:
        raise Unavailable(f"{masked} of {len(results)} items could not be scored in time; retry",
                          retry_after_s=service.pool.retry_after_s(), code="not_scored")
    rewards = [float(r["reward"]) for r in results]
    body = {
        "rewards": rewards,
        "scores": [min(1.0, max(0.0, r)) for r in rewards],
        # The protocol's logs are lists of floats: a component that does not apply (null) is logged 0.0.
        "extra_logs": {c: [float(r["components"][c] or 0.0) for r in results] for c in COMPONENTS},
    }
    return Response(orjson.dumps(body), media_type="application/json")
