"""Result cache: a bounded in-process LRU by default, Redis when configured; both fail open.

A result is keyed by api.md's five parts (scorer version, reward config id, completion, reference,
num_tokens) plus the `explain` flag, because an explained result carries more diagnostics than a
plain one. Only scored (`ok`) results are stored: a timeout is not a fact about the item.

A cache that fails never fails a request: `get_many` answers None ("unavailable") and the caller
scores the items; the fault is counted, and after a fault Redis is left
alone for a short while so that a dead or slow Redis costs at most one timeout per interval. The start
and the end of every outage are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from hashlib import blake2b
from typing import Any, Protocol, TypeVar

from reward_service.scoring.reference import canonical_json
from reward_service.service.logs import OutageLog
from reward_service.service.settings import default

log = logging.getLogger("reward_service.service.cache")

_ENTRY_OVERHEAD = 96  # rough bytes of dict slot, key and value objects per LRU entry
# A Redis call is never given more than this, however busy the event loop (see `RedisCache._timed`).
_HARD_TIMEOUT_S = 1.0
T = TypeVar("T")


class LoopBusyClock:
    """How long the event loop has been too busy to run anything on time, so far.

    A heartbeat every `interval_s` adds how late it ran. Time the loop spent on other work (parsing a
    big body, or this process waiting for a core the scoring workers hold) shows up as lateness, and
    can be told apart from time spent waiting for an answer. Costs one timer callback per interval.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, interval_s: float = 0.005) -> None:
        self.loop = loop
        self._interval = interval_s
        self._busy = 0.0
        self._due = loop.time() + interval_s
        self._handle = loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        now = self.loop.time()
        self._busy += max(0.0, now - self._due)
        self._due = now + self._interval
        self._handle = self.loop.call_at(self._due, self._tick)

    def busy_s(self) -> float:
        """Seconds of lateness so far, the heartbeat now due included."""
        return self._busy + max(0.0, self.loop.time() - self._due)

    def stop(self) -> None:
        self._handle.cancel()


def key_prefix(scorer_version: str, config_id: str, explain: bool) -> bytes:
    return f"{scorer_version}\x00{config_id}\x00{int(explain)}\x00".encode()


def item_key(prefix: bytes, completion: str, reference: Any, num_tokens: int | None,
             reference_json: bytes | None = None) -> bytes | None:
    """A 20-byte digest of the item under `prefix`; None when the reference cannot be serialised.

    Pass `reference_json` (from `canonical_json`) when several items share the reference."""
    ref = reference_json if reference_json is not None else canonical_json(reference)
    if ref is None:
        return None
    text = completion.encode("utf-8", "surrogatepass")
    digest = blake2b(prefix, digest_size=20)
    # Length-prefix the variable parts so no two different items can produce the same byte stream.
    digest.update(len(text).to_bytes(8, "little"))
    digest.update(text)
    digest.update(b"n" if num_tokens is None else b"t%d;" % num_tokens)
    digest.update(ref)
    return digest.digest()


class Cache(Protocol):
    async def get_many(self, keys: Sequence[bytes]) -> list[bytes | None] | None:
        """The value of each key (None: miss), or None when the cache is unavailable."""

    async def set_many(self, entries: Sequence[tuple[bytes, bytes]]) -> None: ...

    async def close(self) -> None: ...


class MemoryCache:
    """LRU bounded by entry count and by bytes. Runs on the event loop only, so it needs no lock."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._data: OrderedDict[bytes, bytes] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._data)

    async def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        data = self._data
        out: list[bytes | None] = []
        for key in keys:
            value = data.get(key)
            if value is not None:
                data.move_to_end(key)
            out.append(value)
        return out

    async def set_many(self, entries: Sequence[tuple[bytes, bytes]]) -> None:
        data = self._data
        for key, value in entries:
            size = len(key) + len(value) + _ENTRY_OVERHEAD
            if size > self._max_bytes:
                continue
            old = data.pop(key, None)
            if old is not None:
                self.bytes -= len(key) + len(old) + _ENTRY_OVERHEAD
            # A copy of the exact size: orjson.dumps output sits in an allocation of ~4 KB however
            # short it is, so keeping it would hold ~10x the bytes counted here.
            data[bytes(memoryview(key))] = bytes(memoryview(value))
            self.bytes += size
        while data and (len(data) > self._max_entries or self.bytes > self._max_bytes):
            key, value = data.popitem(last=False)
            self.bytes -= len(key) + len(value) + _ENTRY_OVERHEAD

    async def close(self) -> None:
        self._data.clear()
        self.bytes = 0


class RedisCache:
    """Redis through redis-py's asyncio client: one MGET per batch, one pipelined SET batch, TTL."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = default("redis_timeout_ms") / 1000,
        retry_s: float = default("redis_retry_s"),
        ttl_s: int = default("cache_ttl_s"),
        fault_log_interval_s: float = default("fault_log_interval_s"),
        on_fault: Callable[[str, str], None] = lambda operation, kind: None,
        namespace: bytes = b"reward_service:",
    ) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # No retries inside redis-py: a failed call is skipped, never repeated while a request waits. Its
        # socket timeouts are only a hard cap: the timeout that counts is `_timed`'s.
        self._hard_timeout = max(_HARD_TIMEOUT_S, 10 * timeout_s)
        self._clock: LoopBusyClock | None = None
        hard = self._hard_timeout + 1.0
        self._client = Redis.from_url(url, socket_timeout=hard, socket_connect_timeout=hard,
                                      retry=Retry(NoBackoff(), 0), max_connections=64)
        self._timeout = timeout_s
        self._retry_s = retry_s
        self._ttl = ttl_s
        self._on_fault = on_fault
        self._namespace = namespace
        self._skip_until = 0.0
        self._outage = OutageLog(log, "redis cache", fault_log_interval_s)

    def _key(self, key: bytes) -> bytes:
        return self._namespace + key.hex().encode()

    def _fault(self, operation: str, exc: BaseException) -> None:
        kind = "timeout" if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) else "error"
        self._skip_until = time.monotonic() + self._retry_s
        self._on_fault(operation, kind)
        # The exception's class only: its text could hold the URL, and a key must never be logged.
        self._outage.fault(f"{operation} {kind} ({type(exc).__name__})")

    def available(self) -> bool:
        return time.monotonic() >= self._skip_until

    async def _timed(self, call: Awaitable[T]) -> T:
        """`call`, or TimeoutError when Redis takes longer than the timeout to answer.

        The time counted is Redis's, not this process's. The service's one event loop is often busy
        (parsing a 1.5 MB body, or waiting for a core held by the scoring workers), and a large MGET
        answer arrives in several reads with the loop's other work in between: a plain `wait_for` blamed
        Redis for that time (the cache was skipped for 31% of items in one window under load, with Redis
        healthy). So the time the loop was busy during the call (`LoopBusyClock`) does not count, up to
        a hard limit of a second."""
        loop = asyncio.get_running_loop()
        clock = self._clock
        if clock is None or clock.loop is not loop:
            clock = self._clock = LoopBusyClock(loop)
        task = asyncio.ensure_future(call)
        start, busy_at_start = loop.time(), clock.busy_s()
        wait_s = self._timeout
        while True:
            done, _ = await asyncio.wait((task,), timeout=wait_s)
            if done:
                return task.result()
            elapsed = loop.time() - start
            waited_for_redis = elapsed - (clock.busy_s() - busy_at_start)
            if waited_for_redis >= self._timeout or elapsed >= self._hard_timeout:
                break
            wait_s = min(self._timeout - waited_for_redis, self._hard_timeout - elapsed)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise TimeoutError(f"no answer from Redis within {self._timeout:g} s")

    async def get_many(self, keys: Sequence[bytes]) -> list[bytes | None] | None:
        if not keys:
            return []
        if not self.available():
            return None
        try:
            values: list[bytes | None] = await self._timed(
                self._client.mget([self._key(k) for k in keys]))  # type: ignore[arg-type]
        except Exception as exc:  # any client fault (connection, timeout, protocol) means "skip Redis"
            self._fault("get", exc)
            return None
        self._outage.ok()
        return values

    async def set_many(self, entries: Sequence[tuple[bytes, bytes]]) -> None:
        if not entries or not self.available():
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, value in entries:
                    pipe.set(self._key(key), value, ex=self._ttl)
                await self._timed(pipe.execute())
        except Exception as exc:
            self._fault("set", exc)
            return
        self._outage.ok()

    async def close(self) -> None:
        if self._clock is not None:
            self._clock.stop()
        try:
            await self._client.aclose()
        except Exception:  # closing a broken connection must not fail shutdown
            log.debug("redis close failed", exc_info=True)
