"""A client for the reward service (api.md): `RewardClient` (sync) and `AsyncRewardClient` (asyncio).

    from trainer_client.client import RewardClient

    with RewardClient("http://rewards:8000", api_key="...") as client:  # or REWARD_SERVICE_URL / _API_KEY
        results = client.score([{"id": "q1-r0", "group_id": "q1", "completion": text, "reference": ref}],
                               advantages="grpo")
        results[0].reward, results[0].mask, results[0].advantage

Errors: every exception this module raises about the service is a `RewardServiceError`.

    RewardServiceError        the service answered something this client cannot use (a 500, a broken body)
    ├── ServiceUnavailable    not reachable, or 429/502/503/504, after the retries ran out: transient, so
    │                         a trainer waits and tries again (`.status_code`, `.retry_after_s`)
    ├── InvalidRequest        400/413/422: the request is the caller's bug (`.code`, `.message`, `.detail`,
    │                         `.items`: (index, id) of each input item the server named); never retried
    └── AuthenticationError   401: a missing or wrong API key; never retried

What a caller can rely on:
* One `ScoredItem` per input item, in input order. An item the service could not score (`timeout`,
  `error`) has `mask` True and `reward` None, never 0: leave it out of the update.
* A batch over the server's item limit (read from GET /v1/config, or `max_items=`) or body limit is
  split into chunks, at most `max_concurrency` in flight at once. When advantages are asked for and
  the batch is split, they are computed here with the service's own function
  (`reward_service.scoring.advantages`), so a group that spans chunks gets what one request would give.
* Connection errors (a refused, reset or timed-out connection) and 429/502/503/504 are retried with
  tenacity: exponential backoff with jitter, never sooner than the server's Retry-After, bounded in
  attempts and in total time. A retry is safe: the service caches results by content, so a chunk it
  already scored is answered from the cache.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import orjson
import tenacity
from pydantic import ValidationError

from reward_service.schemas import AdvantageMode, ConfigResponse, RewardsResponse
from reward_service.scoring.advantages import group_advantages

__all__ = [
    "DEFAULT_URL",
    "AsyncRewardClient",
    "AuthenticationError",
    "InvalidRequest",
    "RewardClient",
    "RewardServiceError",
    "ScoredItem",
    "ScoredItems",
    "ServiceUnavailable",
    "grpo_items",
]

log = logging.getLogger("trainer_client.client")

DEFAULT_URL = "http://127.0.0.1:8000"  # where `reward-service serve` listens by default
_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_CALLER_STATUSES = frozenset({400, 413, 422})
_BODY_OVERHEAD = 4096  # bytes of a request body around its items (config, flags), kept free of the limit
T = TypeVar("T")


# ------------------------------------------------------------------------------------------- errors


class RewardServiceError(Exception):
    """The root of this client's errors. `status_code` and `code` are the server's, when it answered."""

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code


class ServiceUnavailable(RewardServiceError):
    """The service could not be reached or was busy (429/502/503/504) past the retry budget."""

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message, status_code=status_code, code=code)
        self.retry_after_s = retry_after_s


class InvalidRequest(RewardServiceError):
    """The server refused the request (400/413/422): fix the request, do not retry it.

    `items` holds (index in the caller's input, id) of every item the server's `detail` names, e.g. the
    items whose reference is invalid.
    """

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None,
                 detail: list[dict[str, Any]] | None = None, items: list[tuple[int, str]] | None = None) -> None:
        super().__init__(message, status_code=status_code, code=code)
        self.detail = detail or []
        self.items = items or []


class AuthenticationError(RewardServiceError):
    """401: the service wants `Authorization: Bearer <key>` with one of its keys."""


# ------------------------------------------------------------------------------------------ results


@dataclass(frozen=True, slots=True)
class ScoredItem:
    """One item's result (api.md's result object, with the notes lifted out of `diagnostics`)."""

    id: str
    group_id: str | None
    status: str  # "ok", "timeout" or "error"
    mask: bool  # True exactly when status is not "ok": leave the item out of the update
    reward: float | None  # None exactly when masked, never a stand-in 0
    components: dict[str, float | None]
    advantage: float | None
    notes: tuple[str, ...]  # reward-spec's note words: what the completion got wrong
    cached: bool
    error: str | None = None  # a masked item: why it was not scored
    diagnostics: dict[str, Any] = field(default_factory=dict)  # all of it (with explain: the parse)


class ScoredItems(list[ScoredItem]):
    """The results of one `score` call, in input order, with the config and scorer they were scored
    under (every response carries both; a batch split over a rolling deploy may see two)."""

    def __init__(self, items: list[ScoredItem], reward_config_ids: list[str], scorer_versions: list[str]) -> None:
        super().__init__(items)
        self.reward_config_ids = sorted(set(reward_config_ids))
        self.scorer_versions = sorted(set(scorer_versions))

    @property
    def rewards(self) -> list[float | None]:
        return [r.reward for r in self]

    @property
    def masked(self) -> int:
        return sum(r.mask for r in self)


# ------------------------------------------------------------------------------------------ helpers


def grpo_items(completions: Sequence[Sequence[str]], references: Sequence[Mapping[str, Any]], *,
               num_tokens: Sequence[Sequence[int | None]] | None = None, prefix: str = "p") -> list[dict[str, Any]]:
    """Items for prompts x G completions: ids `{prefix}{p}-{g}`, group ids `{prefix}{p}`, one reference
    per prompt (sent once per item; the service shares equal references)."""
    if len(completions) != len(references):
        raise ValueError(f"{len(completions)} prompts' completions but {len(references)} references")
    if num_tokens is not None and [len(c) for c in completions] != [len(n) for n in num_tokens]:
        raise ValueError("num_tokens must have the shape of completions")
    items = []
    for p, (group, reference) in enumerate(zip(completions, references, strict=True)):
        for g, completion in enumerate(group):
            item: dict[str, Any] = {"id": f"{prefix}{p}-{g}", "group_id": f"{prefix}{p}", "completion": completion,
                                    "reference": reference}
            if num_tokens is not None and num_tokens[p][g] is not None:
                item["num_tokens"] = num_tokens[p][g]
            items.append(item)
    return items


def _regroup(results: Sequence[T], shape: Sequence[int]) -> list[list[T]]:
    out, start = [], 0
    for n in shape:
        out.append(list(results[start:start + n]))
        start += n
    return out


@dataclass
class _Chunk:
    start: int  # index of its first item in the caller's input
    ids: list[str]
    body: bytes
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class _Plan:
    ids: list[str]
    group_ids: list[str | None]
    chunks: list[_Chunk]
    local_advantages: AdvantageMode | None  # computed here when the batch is split


def _wire_items(items: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str | None], list[dict[str, Any]]]:
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


def _check_locally(ids: list[str], group_ids: list[str | None], advantages: str | None) -> None:
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


def _split(encoded: list[bytes], max_items: int, max_bytes: int) -> list[tuple[int, int]]:
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


def _error_of(response: httpx.Response, chunk: _Chunk) -> RewardServiceError:
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
    if status in _RETRY_STATUSES:
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


def _results_of(response: httpx.Response, chunk: _Chunk) -> dict[str, Any]:
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


# ------------------------------------------------------------------------------------------ clients


class _Base(ABC):
    """What both clients share: settings, batch planning, retry policy, and turning answers into results."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, max_items: int | None = None,
                 max_body_bytes: int | None = None, max_concurrency: int = 4, connect_timeout_s: float = 5.0,
                 read_timeout_s: float | None = None, pool_timeout_s: float = 60.0, retry_attempts: int = 8,
                 retry_max_s: float = 120.0,
                 transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None) -> None:
        """`base_url` and `api_key` default to REWARD_SERVICE_URL and REWARD_SERVICE_API_KEY (then to
        127.0.0.1:8000 and no key). `max_items` and `max_body_bytes` default to the server's limits.
        `max_concurrency` bounds the chunks in flight and the connections kept. `read_timeout_s` defaults
        to one sized to the batch. Retries stop after `retry_attempts` tries or `retry_max_s` seconds.
        `transport` is httpx's (a sync one for `RewardClient`, an async one for `AsyncRewardClient`)."""
        self.base_url = (base_url or os.environ.get("REWARD_SERVICE_URL") or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("REWARD_SERVICE_API_KEY")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        if max_concurrency < 1 or retry_attempts < 1:
            raise ValueError("max_concurrency and retry_attempts must be at least 1")
        self.max_items = max_items
        self.max_body_bytes = max_body_bytes
        self.max_concurrency = max_concurrency
        self.read_timeout_s = read_timeout_s
        self._timeouts = (connect_timeout_s, pool_timeout_s)
        self._limits = httpx.Limits(max_connections=max_concurrency + 1, max_keepalive_connections=max_concurrency + 1)
        self.retry_attempts = retry_attempts
        self.retry_max_s = retry_max_s
        self._server_limits: tuple[int, int] | None = None
        self._transport = transport
        self._open()

    @abstractmethod
    def _open(self) -> None:
        """Open this client's kind of httpx client."""

    def _timeout(self, n_items: int) -> httpx.Timeout:
        """The service answers within its request deadline (30 s by default); the read timeout leaves
        room for that, the queue ahead of us and the transfer of a large body."""
        connect, pool = self._timeouts
        read = self.read_timeout_s if self.read_timeout_s is not None else 40.0 + 0.005 * n_items
        return httpx.Timeout(connect=connect, read=read, write=30.0, pool=pool)

    def _retry_kwargs(self) -> dict[str, Any]:
        backoff = tenacity.wait_exponential(multiplier=0.5, max=10.0) + tenacity.wait_random(0, 0.5)

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            retry_after = getattr(exc, "retry_after_s", None) or 0.0
            return max(float(backoff(state)), retry_after)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning("%s; retry %d in %.1f s", exc, state.attempt_number, state.upcoming_sleep)

        def give_up(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            assert isinstance(exc, ServiceUnavailable)
            raise ServiceUnavailable(
                f"{exc.message} (gave up after {state.attempt_number} attempts in {state.seconds_since_start:.1f} s)",
                status_code=exc.status_code, code=exc.code, retry_after_s=exc.retry_after_s) from exc

        return {
            "retry": tenacity.retry_if_exception_type(ServiceUnavailable),
            "stop": tenacity.stop_after_attempt(self.retry_attempts) | tenacity.stop_before_delay(self.retry_max_s),
            "wait": wait,
            "before_sleep": before_sleep,
            "retry_error_callback": give_up,
        }

    def _plan(self, items: Sequence[Mapping[str, Any]], advantages: AdvantageMode | None,
              config: Mapping[str, Any] | None, explain: bool, max_items: int, max_bytes: int) -> _Plan:
        ids, group_ids, wire = _wire_items(items)
        _check_locally(ids, group_ids, advantages)
        options: dict[str, Any] = {"config": config} if config is not None else {}
        if explain:
            options["explain"] = True
        if len(wire) <= max_items:  # the common case: one request, its body encoded in one go
            body = orjson.dumps({"items": wire, **options, **({"advantages": advantages} if advantages else {})})
            if len(body) <= max_bytes:
                return _Plan(ids, group_ids, [_Chunk(0, ids, body)], None)
        encoded = [orjson.dumps(item) for item in wire]
        tail = orjson.dumps(options)[1:]  # the options' members and the closing brace
        tail = b"]" + (b"," + tail if len(tail) > 1 else tail)
        chunks = [_Chunk(a, ids[a:b], b'{"items":[' + b",".join(encoded[a:b]) + tail)
                  for a, b in _split(encoded, max_items, max_bytes)]
        return _Plan(ids, group_ids, chunks, advantages)  # computed here: the chunks cannot see each other

    @staticmethod
    def _assemble(plan: _Plan, answers: list[dict[str, Any]]) -> ScoredItems:
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

    @staticmethod
    def _config_of(response: httpx.Response) -> ConfigResponse:
        if response.status_code != 200:
            raise _error_of(response, _CONFIG_CHUNK)
        try:
            return ConfigResponse.model_validate_json(response.content)
        except ValidationError as exc:
            raise RewardServiceError(f"GET /v1/config does not match api.md: {exc}") from None

    def _own_limits(self) -> tuple[int, int] | None:
        if self.max_items is not None and self.max_body_bytes is not None:
            return self.max_items, self.max_body_bytes
        return None

    def _limits_of(self, server: ConfigResponse) -> tuple[int, int]:
        return self.max_items or server.limits.max_items, self.max_body_bytes or server.limits.max_body_bytes

    def _check(self, response: httpx.Response, chunk: _Chunk) -> dict[str, Any]:
        if response.status_code != 200:
            raise _error_of(response, chunk)
        return _results_of(response, chunk)


_CONFIG_CHUNK = _Chunk(0, [], b"")  # GET /v1/config's answers name no items


def _unreachable(exc: httpx.TransportError, base_url: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"reward service at {base_url} not reachable: {type(exc).__name__}: {exc}")


class RewardClient(_Base):
    """A blocking client; thread-safe. Chunks of one call run on a small thread pool."""

    def _open(self) -> None:
        transport = self._transport
        if transport is not None and not isinstance(transport, httpx.BaseTransport):
            raise TypeError("RewardClient needs a sync httpx transport")
        self._http = httpx.Client(base_url=self.base_url, headers=self._headers, limits=self._limits,
                                  transport=transport)
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> RewardClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def server_config(self) -> ConfigResponse:
        """GET /v1/config: the server's default reward config, its id, the scorer version and limits."""
        retrying = tenacity.Retrying(**self._retry_kwargs())
        return self._config_of(retrying(self._send, "GET", "/v1/config", None, 0))

    def limits(self) -> tuple[int, int]:
        """(max items, max body bytes) per request: given to the client, or read once from the server."""
        if self._server_limits is None:
            self._server_limits = self._own_limits() or self._limits_of(self.server_config())
        return self._server_limits

    def score(self, items: Sequence[Mapping[str, Any]], *, config: Mapping[str, Any] | None = None,
              advantages: AdvantageMode | None = None, explain: bool = False) -> ScoredItems:
        """Score `items` (dicts with `completion`, `reference` and optionally `id`, `group_id`,
        `num_tokens`): one result per item, in order. See the module docstring for errors and retries."""
        plan = self._plan(items, advantages, config, explain, *self.limits())
        if len(plan.chunks) <= 1:
            answers = [self._post(c) for c in plan.chunks]
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="reward-client")
            answers = list(self._pool.map(self._post, plan.chunks))
        return self._assemble(plan, answers)

    def score_groups(self, completions: Sequence[Sequence[str]], references: Sequence[Mapping[str, Any]], *,
                     num_tokens: Sequence[Sequence[int | None]] | None = None,
                     advantages: AdvantageMode | None = "grpo", config: Mapping[str, Any] | None = None,
                     explain: bool = False) -> list[list[ScoredItem]]:
        """GRPO's shape: prompts x G completions and one reference per prompt in, prompts x G results out,
        with group advantages (`grpo` unless told otherwise)."""
        items = grpo_items(completions, references, num_tokens=num_tokens)
        results = self.score(items, config=config, advantages=advantages, explain=explain)
        return _regroup(results, [len(c) for c in completions])

    def _send(self, method: str, path: str, chunk: _Chunk | None, n_items: int) -> httpx.Response:
        headers = {"X-Request-ID": chunk.request_id} if chunk is not None else None
        try:
            response = self._http.request(method, path, content=chunk.body if chunk else None, headers=headers,
                                          timeout=self._timeout(n_items))
        except httpx.TransportError as exc:
            raise _unreachable(exc, self.base_url) from exc
        if response.status_code in _RETRY_STATUSES:
            raise _error_of(response, chunk or _CONFIG_CHUNK)
        return response

    def _post(self, chunk: _Chunk) -> dict[str, Any]:
        retrying = tenacity.Retrying(**self._retry_kwargs())
        response = retrying(self._send, "POST", "/v1/rewards", chunk, len(chunk.ids))
        return self._check(response, chunk)


class AsyncRewardClient(_Base):
    """The asyncio client: the same behaviour as `RewardClient`, for trainers that score while they
    compute (chunks of one call run concurrently on the event loop)."""

    def _open(self) -> None:
        transport = self._transport
        if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
            raise TypeError("AsyncRewardClient needs an async httpx transport")
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=self._headers, limits=self._limits,
                                       transport=transport)

    async def __aenter__(self) -> AsyncRewardClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def server_config(self) -> ConfigResponse:
        retrying = tenacity.AsyncRetrying(**self._retry_kwargs())
        return self._config_of(await retrying(self._send, "GET", "/v1/config", None, 0))

    async def limits(self) -> tuple[int, int]:
        if self._server_limits is None:
            self._server_limits = self._own_limits() or self._limits_of(await self.server_config())
        return self._server_limits

    async def score(self, items: Sequence[Mapping[str, Any]], *, config: Mapping[str, Any] | None = None,
                    advantages: AdvantageMode | None = None, explain: bool = False) -> ScoredItems:
        plan = self._plan(items, advantages, config, explain, *await self.limits())
        gate = asyncio.Semaphore(self.max_concurrency)

        async def post(chunk: _Chunk) -> dict[str, Any]:
            async with gate:
                return await self._post(chunk)

        tasks = [asyncio.ensure_future(post(c)) for c in plan.chunks]
        try:
            answers = list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        return self._assemble(plan, answers)

    async def score_groups(self, completions: Sequence[Sequence[str]], references: Sequence[Mapping[str, Any]], *,
                           num_tokens: Sequence[Sequence[int | None]] | None = None,
                           advantages: AdvantageMode | None = "grpo", config: Mapping[str, Any] | None = None,
                           explain: bool = False) -> list[list[ScoredItem]]:
        items = grpo_items(completions, references, num_tokens=num_tokens)
        results = await self.score(items, config=config, advantages=advantages, explain=explain)
        return _regroup(results, [len(c) for c in completions])

    async def _send(self, method: str, path: str, chunk: _Chunk | None, n_items: int) -> httpx.Response:
        headers = {"X-Request-ID": chunk.request_id} if chunk is not None else None
        try:
            response = await self._http.request(method, path, content=chunk.body if chunk else None,
                                                headers=headers, timeout=self._timeout(n_items))
        except httpx.TransportError as exc:
            raise _unreachable(exc, self.base_url) from exc
        if response.status_code in _RETRY_STATUSES:
            raise _error_of(response, chunk or _CONFIG_CHUNK)
        return response

    async def _post(self, chunk: _Chunk) -> dict[str, Any]:
        retrying = tenacity.AsyncRetrying(**self._retry_kwargs())
        response: httpx.Response = await retrying(self._send, "POST", "/v1/rewards", chunk, len(chunk.ids))
        return self._check(response, chunk)
