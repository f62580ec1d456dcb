"""The state behind the routes: settings, worker pool, cache, metrics, readiness; and the scoring path
both scoring routes share (cache look-up, workers, which also validate the references, cache fill)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from reward_service.scoring import InvalidReference, RewardConfig, score
from reward_service.scoring.reference import canonical_json, reference_bounds_error
from reward_service.service.cache import Cache, MemoryCache, RedisCache, item_key, key_prefix
from reward_service.service.errors import Overloaded, Unavailable
from reward_service.service.item_stats import ItemStats, task_label
from reward_service.service.metrics import ServiceMetrics
from reward_service.service.settings import Settings
from reward_service.version import SCORER_VERSION
from reward_service.workers.pool import PoolOverloaded, PoolUnavailable, WorkerPool
from reward_service.workers.protocol import WorkItem, share_references

log = logging.getLogger("reward_service.service")

try:
    from importlib.metadata import version as _dist_version

    PACKAGE_VERSION = _dist_version("video-str-reward")
except Exception:  # not installed (running from a checkout)
    PACKAGE_VERSION = SCORER_VERSION


def build_cache(settings: Settings, metrics: ServiceMetrics) -> Cache | None:
    backend = settings.cache_backend
    if backend == "off":
        return None
    if backend == "memory":
        return MemoryCache(settings.cache_max_entries, settings.cache_max_bytes)
    assert settings.redis_url is not None
    return RedisCache(
        settings.redis_url.get_secret_value(),
        timeout_s=settings.redis_timeout_ms / 1000,
        retry_s=settings.redis_retry_s,
        ttl_s=settings.cache_ttl_s,
        fault_log_interval_s=settings.fault_log_interval_s,
        on_fault=lambda operation, kind: metrics.cache_faults.labels(operation, kind).inc(),
    )


class InvalidReferences(Exception):
    """Items whose reference is invalid, as (index, message) in item order: the request is the client's
    bug, answered 422 naming each (the route says where the items are in its body)."""

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        super().__init__(errors[0][1])
        self.errors = errors


def bounds_errors(items: Sequence[WorkItem]) -> list[tuple[int, str]]:
    """(index, message) of the items whose reference is over api.md's bounds of depth and size, each
    reference object checked once (a group's items share one: `share_references`)."""
    checked: dict[int, str | None] = {}
    errors = []
    for i, (_, reference, _) in enumerate(items):
        key = id(reference)
        if key not in checked:
            checked[key] = reference_bounds_error(reference)
        message = checked[key]
        if message is not None:
            errors.append((i, message))
    return errors


@dataclass
class Batch:
    """One request's items on their way through cache and workers."""

    items: Sequence[WorkItem]
    config: RewardConfig
    explain: bool
    results: list[dict[str, Any] | None] = field(default_factory=list)
    cached: list[bool] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    stats: ItemStats = field(default_factory=ItemStats)  # its items' metrics, counted once it is answered
    # (index, why) of the items whose reference was found invalid where they were scored. A cached item's
    # reference was valid when it was scored.
    invalid: list[tuple[int, str]] = field(default_factory=list)

    @property
    def misses(self) -> list[int]:
        return [i for i, r in enumerate(self.results) if r is None]


class RewardService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.default_config = settings.reward_config
        self.metrics = ServiceMetrics(SCORER_VERSION, self.default_config.id, PACKAGE_VERSION)
        self.pool = WorkerPool(
            workers=settings.worker_count,
            scorer=settings.scorer,
            item_deadline_s=settings.item_deadline_s,
            chunk_items=settings.chunk_items,
            max_queued_items=settings.max_queued_items,
            on_restart=lambda reason: self.metrics.worker_restarts.labels(reason).inc(),
            on_scored=self.metrics.merge_items,
        )
        self.metrics.bind_gauges(lambda: self.inflight_requests, lambda: self.pool.inflight_items,
                                 lambda: self.pool.queued_items, lambda: self.pool.ready_workers)
        self.cache = build_cache(settings, self.metrics)
        self.draining = False
        self.inflight_requests = 0
        self.body_bytes_held = 0  # bytes of request bodies being received or served (`hold_body`)
        self._idle = asyncio.Event()
        self._idle.set()

    # ---------------------------------------------------------------- life cycle and readiness

    async def start(self) -> None:
        try:
            await self.pool.start()
        except PoolUnavailable as exc:
            log.error("scoring workers did not start: %s", exc)

    async def close(self) -> None:
        self.draining = True
        await self.pool.close()
        if self.cache is not None:
            await self.cache.close()

    def request_started(self) -> None:
        self.inflight_requests += 1
        self._idle.clear()

    def hold_body(self, size: int) -> bool:
        """Count `size` more bytes of request bodies held, unless that passes `max_inflight_body_bytes`
        (then the caller answers 429): concurrent big bodies must not take the process's memory."""
        if self.body_bytes_held + size > self.settings.max_inflight_body_bytes:
            return False
        self.body_bytes_held += size
        return True

    def release_body(self, size: int) -> None:
        self.body_bytes_held -= size

    def request_finished(self) -> None:
        self.inflight_requests -= 1
        if self.inflight_requests == 0:
            self._idle.set()

    async def drain(self, grace_s: float, timeout_s: float) -> None:
        """Turn not-ready, keep serving for `grace_s` (load balancers notice), then wait for in-flight work."""
        self.draining = True
        log.info("draining", extra={"fields": {"inflight_requests": self.inflight_requests}})
        await asyncio.sleep(grace_s)
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except asyncio.TimeoutError:
            log.warning("drain timed out with requests in flight",
                        extra={"fields": {"inflight_requests": self.inflight_requests}})

    def check_ready(self) -> None:
        if self.draining:
            raise Unavailable("the service is draining; retry on another replica", code="draining")
        if not self.pool.ready:
            raise Unavailable("the scoring workers are not ready yet", code="not_ready")

    # ---------------------------------------------------------------- scoring path

    def resolve_config(self, overrides: dict[str, Any] | None) -> RewardConfig:
        """The request's config (ConfigError propagates to the route, which names the field)."""
        if not overrides:
            return self.default_config
        return RewardConfig.build(overrides, base=self.default_config)

    async def score(self, items: Sequence[WorkItem], config: RewardConfig, explain: bool, started: float) -> Batch:
        """Answer `items` from the cache and the workers, within the request deadline counted from
        `started` (monotonic clock). Raises InvalidReferences: for a reference over the bounds of depth
        and size before any work is queued, for one the workers found invalid once the others are scored."""
        items = share_references(items)
        errors = bounds_errors(items)
        if errors:
            raise InvalidReferences(errors)
        batch = await self.lookup(items, config, explain)
        await self.complete(batch, started + self.settings.request_deadline_s)
        if batch.invalid:
            raise InvalidReferences(sorted(batch.invalid))
        return batch

    async def lookup(self, items: Sequence[WorkItem], config: RewardConfig, explain: bool) -> Batch:
        """Fill the batch's results from the cache; a cache fault only means every item is a miss.
        `items` share their equal references (`share_references`)."""
        batch = Batch(items, config, explain, [None] * len(items), [False] * len(items))
        if self.cache is None or not items:
            return batch
        prefix = key_prefix(SCORER_VERSION, config.id, explain)
        serialised: dict[int, bytes | None] = {}  # a group's items share one reference object
        for completion, reference, num_tokens in items:
            ref_json = serialised.get(id(reference))
            if ref_json is None:
                ref_json = serialised[id(reference)] = canonical_json(reference)
            batch.keys.append(None if ref_json is None else item_key(prefix, completion, reference, num_tokens,
                                                                     ref_json))
        wanted = [i for i, k in enumerate(batch.keys) if k is not None]
        values = await self.cache.get_many([batch.keys[i] for i in wanted])  # type: ignore[misc]
        counter = self.metrics.cache_requests
        if values is None:
            counter.add(("error",), len(wanted))
            return batch
        hits = batch.stats
        for i, value in zip(wanted, values, strict=True):
            if value is not None:
                result = orjson.loads(value)
                batch.results[i] = result
                batch.cached[i] = True
                # Counted as items, not in the reward histograms: those describe scoring work done.
                key = (task_label(items[i][1]), result["status"])
                hits.items[key] = hits.items.get(key, 0) + 1
        n_hits = sum(hits.items.values())
        counter.add(("hit",), n_hits)
        counter.add(("miss",), len(wanted) - n_hits)
        return batch

    async def complete(self, batch: Batch, deadline_at: float) -> None:
        """Score the misses (until the request deadline) and cache the scored ones.

        References are validated where the items are scored: when one is invalid (`batch.invalid`), the
        request is the client's bug and is answered 422, so nothing of it is cached or counted as answered
        (the histograms of scoring work done count what its valid items cost: `WorkerPool(on_scored=...)`)."""
        misses = self._score_oversize(batch)
        scored_stats = None
        if misses:
            remaining = max(0.001, deadline_at - time.monotonic())
            try:
                scored = await self.pool.score([batch.items[i] for i in misses], batch.config, batch.explain,
                                               remaining)
            except PoolOverloaded as exc:
                raise Overloaded("the service has more queued work than its limit", exc.retry_after_s) from None
            except PoolUnavailable:
                self.check_ready()
                raise Unavailable("the scoring workers are not ready yet", code="not_ready") from None
            for i, result in zip(misses, scored.results, strict=True):
                batch.results[i] = result
            batch.invalid += [(misses[position], why) for position, why in scored.invalid]
            scored_stats = scored.stats
        if batch.invalid:
            return
        if not batch.stats.empty:
            self.metrics.merge_items(batch.stats)
        if scored_stats is not None:
            self.metrics.merge_items(scored_stats)
        if self.cache is not None and batch.keys:
            entries = [(batch.keys[i], orjson.dumps(batch.results[i])) for i in range(len(batch.items))
                       if not batch.cached[i] and batch.keys[i] is not None and scored_ok(batch.results[i])]
            await self.cache.set_many(entries)  # type: ignore[arg-type]

    def _score_oversize(self, batch: Batch) -> list[int]:
        """Answer here the misses whose completion is over `max_completion_chars`: the spec does not parse
        them (`completion_too_large`), so they never travel to a worker (a 20 MB one used to spend its
        item deadline in transfer). Returns the other misses."""
        limit = batch.config.max_completion_chars
        rest: list[int] = []
        for i in batch.misses:
            completion, reference, num_tokens = batch.items[i]
            if len(completion) <= limit:
                rest.append(i)
                continue
            try:
                result = score(completion, reference, batch.config, num_tokens, batch.explain).to_dict()
            except InvalidReference as exc:
                batch.invalid.append((i, str(exc)))
                continue
            batch.results[i] = result
            batch.stats.add(task_label(reference), result)
        return rest


def scored_ok(result: dict[str, Any] | None) -> bool:
    return result is not None and result.get("status") == "ok"
