"""The client's side of api.md's wire format: items into request bodies within the server's limits,
answers into results or errors. No I/O: the clients send what this builds."""

from __future__ import annotations

import gc
import logging
import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from pydantic import ValidationError

from reward_service.schemas import AdvantageMode, RewardsResponse
from reward_service.scoring.advantages import group_advantages
from trainer_client.client.errors import (
    AuthenticationError,
    InvalidRequest,
    RewardServiceError,
    ServiceUnavailable,
)
from trainer_client.client.results import ScoredItem, ScoredItems

log = logging.getLogger("trainer_client.client")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
# A service that is down, restarting or cut off: worth another try. Not a malformed URL or request
# (UnsupportedProtocol, LocalProtocolError), which would fail the same way every time.
RETRIED_TRANSPORT_ERRORS = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)
_CALLER_STATUSES = frozenset({400, 413, 422})
_BODY_OVERHEAD = 4096  # bytes of a request body around its items (config, flags), kept free of the limit


@dataclass
class Chunk:
    start: int  # index of its first item in the caller's input
    ids: list[str]
    body: bytes
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class Plan:
    ids: list[str]
    group_ids: list[str | None]
    chunks: list[Chunk]
    local_advantages: AdvantageMode | None  # computed here when the batch is split


def wire_items(items: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str | None], list[dict[str, Any]]]:
    """Each item as api.md's item object (other keys dropped; a missing id is the item's index)."""
    ids: list[str] = []
    group_ids: list[str | None] = []
    wire: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if "completion" not in item or "reference" not in item:
            raise ValueError(f"item {i} needs 'completion' and 'reference'")
        item_id = str(item.get("id", i))
        out: dict[str, Any] = {"id": item_id, "completion": item["completion"], "reference": item["reference"]}
        if item.get("group_id") is not None:
            out["group_id"] = item["group_id"]
        if item.get("num_tokens") is not None:
            out["num_tokens"] = item["num_tokens"]
        ids.append(item_id)
        group_ids.append(out.get("group_id"))
        wire.append(out)
    return ids, group_ids, wire


def check_locally(ids: list[str], group_ids: list[str | None], advantages: str | None) -> None:
    """What the server checks per request, checked over the whole batch (chunks cannot see each other)."""
    seen: dict[str, int] = {}
    for i, item_id in enumerate(ids):
        if item_id in seen:
            raise InvalidRequest(f"item {i}: duplicate id {item_id!r} (also item {seen[item_id]})",
                                 code="duplicate_id", items=[(i, item_id)])
        seen[item_id] = i
    if advantages is not None:
        missing = [(i, ids[i]) for i, g in enumerate(group_ids) if g is None]
        if missing:
            raise InvalidRequest(f"advantages {advantages!r} need a group_id on every item; item {missing[0][0]} "
                                 "has none", code="missing_group_id", items=missing)


def split_ranges(encoded: list[bytes], max_items: int, max_bytes: int) -> list[tuple[int, int]]:
    """[start, end) ranges of balanced chunks within both limits."""
    n = len(encoded)
    if n == 0:
        return []
    budget = max(1, max_bytes - _BODY_OVERHEAD)
    total = sum(len(b) + 1 for b in encoded)
    k = max(math.ceil(n / max_items), math.ceil(total / budget))
    target = math.ceil(n / k)
    ranges, start, size = [], 0, 0
    for i, item in enumerate(encoded):
        if i > start and (i - start >= target or size + len(item) + 1 > budget):
            ranges.append((start, i))
            start, size = i, 0
        size += len(item) + 1
    ranges.append((start, n))
    return ranges


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back on our own backoff


def error_of(response: httpx.Response, chunk: Chunk) -> RewardServiceError:
    """The exception for a non-200 answer to `chunk` (api.md's error body, when there is one)."""
    try:
        body = orjson.loads(response.content)
        code, message = body["error"]["code"], body["error"]["message"]
        detail = body.get("detail") or []
    except (orjson.JSONDecodeError, KeyError, TypeError):
        code, message, detail = None, response.text[:200] or response.reason_phrase, []
    status = response.status_code
    text = f"reward service answered {status}: {message}"
    if status == 401:
        return AuthenticationError(text, status_code=status, code=code)
    if status in RETRY_STATUSES:
        return ServiceUnavailable(text, status_code=status, code=code, retry_after_s=_retry_after(response))
    if status in _CALLER_STATUSES:
        named: dict[int, str] = {}
        for issue in detail:  # a chunk-local position in the detail becomes the caller's index
            loc = issue.get("loc") or []
            if len(loc) > 2 and loc[1] == "items" and isinstance(loc[2], int) and 0 <= loc[2] < len(chunk.ids):
                named.setdefault(chunk.start + loc[2], chunk.ids[loc[2]])
                loc[2] += chunk.start
        return InvalidRequest(text, status_code=status, code=code, detail=detail, items=sorted(named.items()))
    return RewardServiceError(text, status_code=status, code=code)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Parsing a 4,096-item answer makes some 100,000 short-lived, acyclic objects, freed by reference
    counting; a full collection that happens to run meanwhile scans them all: 25 ms became 130 ms in one
    run of three. So the collector waits for the parse (and runs as before afterwards)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def results_of(response: httpx.Response, chunk: Chunk) -> dict[str, Any]:
    """The answer's JSON, once the response model has checked it (about 5 us an item; results are built
    from the plain JSON, several times cheaper than dumping the models)."""
    with _gc_paused():
        try:
            RewardsResponse.model_validate_json(response.content)
        except ValidationError as exc:
            raise RewardServiceError(f"the reward service's answer does not match api.md: {exc}") from None
        answer: dict[str, Any] = orjson.loads(response.content)
    if [r["id"] for r in answer["results"]] != chunk.ids:
        raise RewardServiceError("the reward service's answer does not list the items sent, in order")
    return answer


CONFIG_CHUNK = Chunk(0, [], b"")  # GET /v1/config's answers name no items


def unreachable(exc: Exception, base_url: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"reward service at {base_url} not reachable: {type(exc).__name__}: {exc}")


def plan_batch(items: Sequence[Mapping[str, Any]], advantages: AdvantageMode | None,
               config: Mapping[str, Any] | None, explain: bool, max_items: int, max_bytes: int) -> Plan:
    ids, group_ids, wire = wire_items(items)
    check_locally(ids, group_ids, advantages)
    options: dict[str, Any] = {"config": config} if config is not None else {}
    if explain:
        options["explain"] = True
    if len(wire) <= max_items:  # the common case: one request, its body encoded in one go
        body = orjson.dumps({"items": wire, **options, **({"advantages": advantages} if advantages else {})})
        if len(body) <= max_bytes:
            return Plan(ids, group_ids, [Chunk(0, ids, body)], None)
    encoded = [orjson.dumps(item) for item in wire]
    tail = orjson.dumps(options)[1:]  # the options' members and the closing brace
    tail = b"]" + (b"," + tail if len(tail) > 1 else tail)
    chunks = [Chunk(a, ids[a:b], b'{"items":[' + b",".join(encoded[a:b]) + tail)
              for a, b in split_ranges(encoded, max_items, max_bytes)]
    return Plan(ids, group_ids, chunks, advantages)  # computed here: the chunks cannot see each other


def assemble(plan: Plan, answers: list[dict[str, Any]]) -> ScoredItems:
    results = [r for answer in answers for r in answer["results"]]
    advantages = [r["advantage"] for r in results]
    if plan.local_advantages is not None:
        groups = [g or "" for g in plan.group_ids]
        advantages = group_advantages([r["reward"] for r in results], groups, plan.local_advantages)
    items = []
    for r, advantage in zip(results, advantages, strict=True):
        diagnostics = r["diagnostics"]
        items.append(ScoredItem(
            id=r["id"], group_id=r["group_id"], status=r["status"], mask=r["mask"], reward=r["reward"],
            components=r["components"], advantage=advantage, notes=tuple(diagnostics["notes"]),
            cached=r["cached"], error=diagnostics.get("error"), diagnostics=diagnostics,
        ))
    scored = ScoredItems(items, [a["reward_config_id"] for a in answers], [a["scorer_version"] for a in answers])
    if len(scored.scorer_versions) > 1 or len(scored.reward_config_ids) > 1:
        log.warning("one batch was scored under several scorer versions or configs: %s %s",
                    scored.scorer_versions, scored.reward_config_ids)
    return scored
