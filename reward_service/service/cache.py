"""Result cache: a bounded in-process LRU by default, Redis when configured; both fail open.

A result is keyed by api.md's five parts (scorer version, reward config id, completion, reference,
num_tokens) plus the `explain` flag, because an explained result carries more diagnostics than a
plain one. Only scored (`ok`) results are stored: a timeout is not a fact about the item.

A cache that fails never fails a request: `get_many` answers None ("unavailable") and the caller
scores the items; the fault is counted and logged once per interval, and after a fault Redis is left
alone for a short while so that a dead or slow Redis costs at most one timeout per interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from hashlib import blake2b
from typing import Any, Protocol

from reward_service.scoring.reference import canonical_json
from reward_service.service.logs import FaultLog

log = logging.getLogger("reward_service.service.cache")

_ENTRY_OVERHEAD = 96  # rough bytes of dict slot, key and value objects per LRU entry


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
        timeout_s: float = 0.05,
        retry_s: float = 1.0,
        ttl_s: int = 7 * 24 * 3600,
        fault_log_interval_s: float = 30.0,
        on_fault: Callable[[str, str], None] = lambda operation, kind: None,
        namespace: bytes = b"reward_service:",
    ) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # No retries inside redis-py: a failed call is skipped, never repeated while a request waits.
        self._client = Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                      retry=Retry(NoBackoff(), 0), max_connections=64)
        self._timeout = timeout_s
        self._retry_s = retry_s
        self._ttl = ttl_s
        self._on_fault = on_fault
        self._namespace = namespace
        self._skip_until = 0.0
        self._fault_log = FaultLog(log, "redis cache", fault_log_interval_s)

    def _key(self, key: bytes) -> bytes:
        return self._namespace + key.hex().encode()

    def _fault(self, operation: str, exc: BaseException) -> None:
        kind = "timeout" if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) else "error"
        self._skip_until = time.monotonic() + self._retry_s
        self._on_fault(operation, kind)
        # The exception's class only: its text could hold the URL, and a key must never be logged.
        self._fault_log.fault(f"{operation} {kind} ({type(exc).__name__})")

    def available(self) -> bool:
        return time.monotonic() >= self._skip_until

    async def get_many(self, keys: Sequence[bytes]) -> list[bytes | None] | None:
        if not keys:
            return []
        if not self.available():
            return None
        try:
            values: list[bytes | None] = await asyncio.wait_for(
                self._client.mget([self._key(k) for k in keys]), self._timeout)  # type: ignore[arg-type]
        except Exception as exc:  # any client fault (connection, timeout, protocol) means "skip Redis"
            self._fault("get", exc)
            return None
        return values

    async def set_many(self, entries: Sequence[tuple[bytes, bytes]]) -> None:
        if not entries or not self.available():
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, value in entries:
                    pipe.set(self._key(key), value, ex=self._ttl)
                await asyncio.wait_for(pipe.execute(), self._timeout)
        except Exception as exc:
            self._fault("set", exc)

    async def close(self) -> None:
        try:
            await self._client.aclose()
        except Exception:  # closing a broken connection must not fail shutdown
            log.debug("redis close failed", exc_info=True)
