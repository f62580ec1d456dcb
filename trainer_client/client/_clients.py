"""The two clients: settings, retries and I/O (sync on httpx.Client with a thread pool for chunks,
async on httpx.AsyncClient); what goes over the wire is built in `_wire`."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import tenacity
from pydantic import ValidationError

from reward_service.schemas import AdvantageMode, ConfigResponse
from trainer_client.client._wire import (
    CONFIG_CHUNK,
    RETRIED_TRANSPORT_ERRORS,
    RETRY_STATUSES,
    Chunk,
    assemble,
    error_of,
    plan_batch,
    results_of,
    unreachable,
)
from trainer_client.client.errors import RewardServiceError, ServiceUnavailable
from trainer_client.client.results import ScoredItem, ScoredItems, grpo_items, regroup

log = logging.getLogger("trainer_client.client")

DEFAULT_URL = "http://127.0.0.1:8000"  # where `reward-service serve` listens by default


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
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"the reward service's URL must start with http:// or https://, got {self.base_url!r}")
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

    @staticmethod
    def _config_of(response: httpx.Response) -> ConfigResponse:
        if response.status_code != 200:
            raise error_of(response, CONFIG_CHUNK)
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

    def _check(self, response: httpx.Response, chunk: Chunk) -> dict[str, Any]:
        if response.status_code != 200:
            raise error_of(response, chunk)
        return results_of(response, chunk)


class RewardClient(_Base):
    """A blocking client; thread-safe. Chunks of one call run on a small thread pool."""

    def _open(self) -> None:
        transport = self._transport
        if transport is not None and not isinstance(transport, httpx.BaseTransport):
            raise TypeError("RewardClient needs a sync httpx transport")
        self._http = httpx.Client(base_url=self.base_url, headers=self._headers, limits=self._limits,
                                  transport=transport)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

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
        plan = plan_batch(items, advantages, config, explain, *self.limits())
        if len(plan.chunks) <= 1:
            answers = [self._post(c) for c in plan.chunks]
        else:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="reward-client")
            answers = list(self._pool.map(self._post, plan.chunks))
        return assemble(plan, answers)

    def score_groups(self, completions: Sequence[Sequence[str]], references: Sequence[Mapping[str, Any]], *,
                     num_tokens: Sequence[Sequence[int | None]] | None = None,
                     advantages: AdvantageMode | None = "grpo", config: Mapping[str, Any] | None = None,
                     explain: bool = False) -> list[list[ScoredItem]]:
        """GRPO's shape: prompts x G completions and one reference per prompt in, prompts x G results out,
        with group advantages (`grpo` unless told otherwise)."""
        items = grpo_items(completions, references, num_tokens=num_tokens)
        results = self.score(items, config=config, advantages=advantages, explain=explain)
        return regroup(results, [len(c) for c in completions])

    def _send(self, method: str, path: str, chunk: Chunk | None, n_items: int) -> httpx.Response:
        headers = {"X-Request-ID": chunk.request_id} if chunk is not None else None
        try:
            response = self._http.request(method, path, content=chunk.body if chunk else None, headers=headers,
                                          timeout=self._timeout(n_items))
        except RETRIED_TRANSPORT_ERRORS as exc:
            raise unreachable(exc, self.base_url) from exc
        if response.status_code in RETRY_STATUSES:
            raise error_of(response, chunk or CONFIG_CHUNK)
        return response

    def _post(self, chunk: Chunk) -> dict[str, Any]:
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
        plan = plan_batch(items, advantages, config, explain, *await self.limits())
        gate = asyncio.Semaphore(self.max_concurrency)

        async def post(chunk: Chunk) -> dict[str, Any]:
            async with gate:
                return await self._post(chunk)

        tasks = [asyncio.ensure_future(post(c)) for c in plan.chunks]
        try:
            answers = list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)  # let them finish cancelling
            raise
        return assemble(plan, answers)

    async def score_groups(self, completions: Sequence[Sequence[str]], references: Sequence[Mapping[str, Any]], *,
                           num_tokens: Sequence[Sequence[int | None]] | None = None,
                           advantages: AdvantageMode | None = "grpo", config: Mapping[str, Any] | None = None,
                           explain: bool = False) -> list[list[ScoredItem]]:
        items = grpo_items(completions, references, num_tokens=num_tokens)
        results = await self.score(items, config=config, advantages=advantages, explain=explain)
        return regroup(results, [len(c) for c in completions])

    async def _send(self, method: str, path: str, chunk: Chunk | None, n_items: int) -> httpx.Response:
        headers = {"X-Request-ID": chunk.request_id} if chunk is not None else None
        try:
            response = await self._http.request(method, path, content=chunk.body if chunk else None,
                                                headers=headers, timeout=self._timeout(n_items))
        except RETRIED_TRANSPORT_ERRORS as exc:
            raise unreachable(exc, self.base_url) from exc
        if response.status_code in RETRY_STATUSES:
            raise error_of(response, chunk or CONFIG_CHUNK)
        return response

    async def _post(self, chunk: Chunk) -> dict[str, Any]:
        retrying = tenacity.AsyncRetrying(**self._retry_kwargs())
        response: httpx.Response = await retrying(self._send, "POST", "/v1/rewards", chunk, len(chunk.ids))
        return self._check(response, chunk)
