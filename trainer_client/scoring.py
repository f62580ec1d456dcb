"""Scoring for the trainer: the async client on a background event loop, so rewards are fetched while
the training thread computes log-probabilities; patience when the service is away; and, for local
runs, a reward service started beside the trainer.

A trainer never trains on missing rewards: when the service cannot be reached (after the client's
own retries), `Scorer.result` says so in the log and waits with exponential backoff, resending the
same items, for as long as it takes (Ctrl-C stops it). Invalid requests and a wrong key are not
waited on: they are bugs, and raise.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from trainer_client.client import AsyncRewardClient, ScoredItems, ServiceUnavailable

log = logging.getLogger("trainer_client.scoring")


class Scorer:
    """`submit` items, keep working, then `result`: the scoring runs on a private event loop thread."""

    def __init__(self, base_url: str | None, api_key: str | None, config: Mapping[str, Any] | None = None,
                 **client_options: Any) -> None:
        self.config = dict(config) if config else None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="reward-scorer", daemon=True)
        self._thread.start()
        self._client = self._call(self._make_client(base_url, api_key, client_options))
        self.base_url = self._client.base_url

    async def _make_client(self, base_url: str | None, api_key: str | None,
                           options: Mapping[str, Any]) -> AsyncRewardClient:
        return AsyncRewardClient(base_url, api_key, **options)

    async def _cancel_pending(self) -> None:
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def submit(self, items: Sequence[Mapping[str, Any]]) -> Future[ScoredItems]:
        return asyncio.run_coroutine_threadsafe(self._client.score(items, config=self.config), self._loop)

    def result(self, items: Sequence[Mapping[str, Any]], pending: Future[ScoredItems], *,
               first_wait_s: float = 2.0, max_wait_s: float = 60.0) -> ScoredItems:
        """The results of `pending` (a `submit` of `items`); while the service is unreachable, wait and
        send the items again, with backoff, however long it takes."""
        wait, attempt = first_wait_s, 0
        while True:
            try:
                return pending.result()
            except ServiceUnavailable as exc:
                attempt += 1
                log.error("the reward service at %s cannot score this batch (%s); no update without rewards: "
                          "waiting %.0f s before sending it again (attempt %d)", self.base_url, exc, wait, attempt)
                time.sleep(wait)
                wait = min(max_wait_s, wait * 2)
                pending = self.submit(items)

    def score(self, items: Sequence[Mapping[str, Any]]) -> ScoredItems:
        return self.result(items, self.submit(items))

    def close(self) -> None:
        if self._loop.is_running():
            self._call(self._cancel_pending())  # a run that stopped mid-step leaves its scoring behind
            self._call(self._client.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._loop.is_running():
            self._loop.close()


@contextmanager
def local_service(workers: int | None = None) -> Iterator[str]:
    """`reward-service serve` on a free 127.0.0.1 port for the length of a run; yields its URL."""
    if importlib.util.find_spec("fastapi") is None:
        raise RuntimeError("spawn_service needs the reward service: pip install 'video-str-reward[service]'")
    from reward_service.cli.bench_http import running_service

    args = ["--log-level", "warning", *(["--workers", str(workers)] if workers else [])]
    with running_service(*args) as service:
        log.info("reward service started at %s (pid %d)", service.base_url, service.process.pid)
        yield service.base_url
