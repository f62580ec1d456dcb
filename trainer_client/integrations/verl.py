"""verl: the reward service as verl's custom reward function.

verl 0.9 loads `reward.custom_reward_function.path` / `.name` and calls it per rollout as
`compute_score(data_source=, solution_str=, ground_truth=, extra_info=, **reward_kwargs)`; its reward
loop awaits a coroutine function directly, and its `rate_limited` manager is the one meant for remote
scorers. The batch manager calls `compute_score(data_sources=, solution_strs=, ground_truths=,
extra_infos=, **reward_kwargs)` once per batch. Launch lines: README, "Use it from your trainer".

    reward.reward_manager.name=rate_limited
    reward.custom_reward_function.path=pkg://trainer_client.integrations.verl
    reward.custom_reward_function.name=compute_score_async
    +reward.custom_reward_function.reward_kwargs.url=http://rewards:8000     # else REWARD_SERVICE_URL

* `ground_truth` is api.md's reference, as a dict or its JSON text.
* The result is a dict with `score` and every component under the same keys for every sample (verl
  builds its logs from the first sample's keys): a null component is 0.0 with `<name>_null` 1.0.
* verl has no mask. An item the service could not score after the client's retries (`timeout`,
  `error`) gives `score` 0.0 with `masked` 1.0, and is logged: counted in verl's metrics (the mean of
  `masked`) and in the log, never silent. If the service cannot be reached at all, the error is raised:
  training on made-up rewards would be worse than stopping.
* `compute_score_async` gathers the per-rollout calls that arrive within `window_s` (10 ms) into one
  request: verl calls it once per rollout, concurrently, and one request of 512 items costs the service
  far less than 512 requests of one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from reward_service.scoring import COMPONENTS
from trainer_client.client import AsyncRewardClient, RewardClient, ScoredItem, ScoredItems
from trainer_client.integrations._common import masked_summary, read_reference

__all__ = ["compute_score", "compute_score_async", "compute_score_batch"]

log = logging.getLogger("trainer_client.integrations.verl")

_clients: dict[tuple[Any, ...], RewardClient] = {}
_clients_lock = threading.Lock()


def verl_result(result: ScoredItem) -> dict[str, float]:
    """verl's dict for one result: the same keys for every sample, floats only."""
    out = {"score": 0.0 if result.reward is None else float(result.reward), "masked": float(result.mask)}
    for name in COMPONENTS:
        value = result.components.get(name)
        out[name] = 0.0 if value is None else float(value)
        out[f"{name}_null"] = float(value is None)
    return out


def _item(solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    item: dict[str, Any] = {"completion": solution_str, "reference": read_reference(ground_truth, where)}
    num_tokens = (extra_info or {}).get("num_tokens")
    if isinstance(num_tokens, int) and num_tokens >= 0:
        item["num_tokens"] = num_tokens
    return item


def _report(results: Sequence[ScoredItem]) -> None:
    if any(r.mask for r in results):
        log.warning("verl: %s; they count 0.0 with masked=1.0", masked_summary(results))


def _client(url: str | None, api_key: str | None, options: Mapping[str, Any] | None) -> RewardClient:
    """One client per (url, key, options) and process: verl's sync managers call from a thread pool,
    and httpx's client is thread-safe."""
    key = (url, api_key, orjson.dumps(options, option=orjson.OPT_SORT_KEYS))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = RewardClient(url, api_key, **dict(options or {}))
        return client


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None,
                  *, url: str | None = None, api_key: str | None = None, config: Mapping[str, Any] | None = None,
                  client_options: Mapping[str, Any] | None = None, **_: Any) -> dict[str, float]:
    """One rollout's reward (blocking). `url`, `api_key`, `config`, `client_options` come from verl's
    `reward_kwargs`; the URL and key default to REWARD_SERVICE_URL and REWARD_SERVICE_API_KEY."""
    results = _client(url, api_key, client_options).score(
        [_item(solution_str, ground_truth, extra_info, f"{data_source} rollout")], config=config)
    _report(results)
    return verl_result(results[0])


def compute_score_batch(data_sources: Sequence[str], solution_strs: Sequence[str], ground_truths: Sequence[Any],
                        extra_infos: Sequence[Mapping[str, Any] | None] | None = None, *, url: str | None = None,
                        api_key: str | None = None, config: Mapping[str, Any] | None = None,
                        client_options: Mapping[str, Any] | None = None, **_: Any) -> list[dict[str, float]]:
    """verl's batch manager form: one request (chunked by the client) for the whole batch."""
    infos = list(extra_infos) if extra_infos is not None else [None] * len(solution_strs)
    items = [_item(s, g, e, f"rollout {i} ({d})")
             for i, (d, s, g, e) in enumerate(zip(data_sources, solution_strs, ground_truths, infos, strict=True))]
    results = _client(url, api_key, client_options).score(items, config=config)
    _report(results)
    return [verl_result(r) for r in results]


@dataclass
class _Coalescer:
    """Gathers the items of concurrent per-rollout calls on one event loop into one request."""

    client: AsyncRewardClient
    config: Mapping[str, Any] | None
    window_s: float
    max_items: int
    pending: list[tuple[dict[str, Any], asyncio.Future[ScoredItem]]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    sending: set[asyncio.Task[None]] = field(default_factory=set)  # held so a send is never collected mid-way

    def add(self, item: dict[str, Any]) -> asyncio.Future[ScoredItem]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ScoredItem] = loop.create_future()
        self.pending.append((item, future))
        if len(self.pending) >= self.max_items:
            self._flush()
        elif self.timer is None:
            self.timer = loop.call_later(self.window_s, self._flush)
        return future

    def _flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        batch, self.pending = self.pending, []
        if batch:
            task = asyncio.ensure_future(self._send(batch))
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)

    async def _send(self, batch: list[tuple[dict[str, Any], asyncio.Future[ScoredItem]]]) -> None:
        items = [{**item, "id": str(i)} for i, (item, _) in enumerate(batch)]
        try:
            results: ScoredItems = await self.client.score(items, config=self.config)
        except BaseException as exc:  # cancelled too: no caller may wait forever on its future
            for _, future in batch:
                if not future.done():
                    if isinstance(exc, Exception):
                        future.set_exception(exc)
                    else:
                        future.cancel()
            if not isinstance(exc, Exception):
                raise
            return  # the callers have the error; a task nobody awaits must not raise it again
        _report(results)
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


# per event loop (verl runs one per reward worker): a client and its futures belong to one loop
_coalescers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], _Coalescer]] = (
    weakref.WeakKeyDictionary())


async def compute_score_async(data_source: str, solution_str: str, ground_truth: Any,
                              extra_info: Mapping[str, Any] | None = None, *, url: str | None = None,
                              api_key: str | None = None, config: Mapping[str, Any] | None = None,
                              client_options: Mapping[str, Any] | None = None, window_s: float = 0.01,
                              max_batch: int = 512, **_: Any) -> dict[str, float]:
    """One rollout's reward, for verl's async reward loop: calls that arrive together share a request."""
    on_loop = _coalescers.setdefault(asyncio.get_running_loop(), {})
    key = (url, api_key, orjson.dumps(config, option=orjson.OPT_SORT_KEYS),
           orjson.dumps(client_options, option=orjson.OPT_SORT_KEYS))
    coalescer = on_loop.get(key)
    if coalescer is None:
        client = AsyncRewardClient(url, api_key, **dict(client_options or {}))
        coalescer = on_loop[key] = _Coalescer(client, config, window_s, max_batch)
    result = await coalescer.add(_item(solution_str, ground_truth, extra_info, f"{data_source} rollout"))
    return verl_result(result)
