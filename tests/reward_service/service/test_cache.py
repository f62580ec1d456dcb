"""The in-process LRU (bounded in entries and bytes) and the cache key."""

from __future__ import annotations

import asyncio
import logging
import tracemalloc

import orjson

from reward_service.service.cache import MemoryCache, item_key, key_prefix
from reward_service.service.logs import OutageLog

REF = {"task_type": "numerical", "answer": 4.0, "graph": {"a": [0, 0]}}


def run(coro):
    return asyncio.run(coro)


def test_lru_evicts_the_least_recently_used_entry():
    cache = MemoryCache(max_entries=3, max_bytes=10**6)
    run(cache.set_many([(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]))
    assert run(cache.get_many([b"a"])) == [b"1"]  # a is now the most recent
    run(cache.set_many([(b"d", b"4")]))
    assert run(cache.get_many([b"a", b"b", b"c", b"d"])) == [b"1", None, b"3", b"4"]
    assert len(cache) == 3


def test_lru_is_bounded_in_bytes():
    cache = MemoryCache(max_entries=1000, max_bytes=2000)
    run(cache.set_many([(bytes([i]), b"x" * 400) for i in range(10)]))
    assert cache.bytes <= 2000 and len(cache) < 10
    assert run(cache.get_many([bytes([9])])) == [b"x" * 400]  # the newest survives
    run(cache.set_many([(b"huge", b"y" * 5000)]))  # bigger than the whole cache: not stored, nothing evicted
    assert run(cache.get_many([b"huge"])) == [None] and run(cache.get_many([bytes([9])])) == [b"x" * 400]


def test_the_byte_bound_holds_for_the_memory_the_entries_really_take():
    # orjson.dumps returns a bytes object sitting in a ~4 KB allocation, however short: kept as is, a
    # cache of results would hold ten times the memory it counts.
    result = {"status": "ok", "mask": False, "reward": 1.5, "diagnostics": {"notes": []},
              "components": {"format": 1.0, "answer": 0.5, "graph_node": None, "graph_edge": None, "length": 1.0}}
    cache = MemoryCache(max_entries=10**6, max_bytes=2**20)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for batch in range(40):
            run(cache.set_many([(b"%d-%d" % (batch, i), orjson.dumps(result)) for i in range(512)]))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(cache) > 2000  # the bound, not the count, limits it
    assert held < 2 * 2**20, f"{held / 2**20:.1f} MiB held for a 1 MiB cache"


def test_replacing_an_entry_keeps_the_byte_count_right():
    cache = MemoryCache(max_entries=10, max_bytes=10**6)
    run(cache.set_many([(b"k", b"x" * 100)]))
    run(cache.set_many([(b"k", b"y" * 10)]))
    assert len(cache) == 1 and cache.bytes == 1 + 10 + 96


def test_key_covers_every_part_and_ignores_json_key_order():
    p = key_prefix("0.1.0", "abc", False)
    base = item_key(p, "completion", REF, 400)
    assert base is not None and len(base) == 20
    assert item_key(p, "completion", {"graph": {"a": [0, 0]}, "answer": 4.0, "task_type": "numerical"}, 400) == base
    different = [
        item_key(key_prefix("0.1.1", "abc", False), "completion", REF, 400),  # scorer version
        item_key(key_prefix("0.1.0", "abd", False), "completion", REF, 400),  # reward config id
        item_key(key_prefix("0.1.0", "abc", True), "completion", REF, 400),  # explain
        item_key(p, "completion ", REF, 400),
        item_key(p, "completion", REF | {"answer": 4.5}, 400),
        item_key(p, "completion", REF, 401),
        item_key(p, "completion", REF, None),
        item_key(p, "completion", REF, 0),
    ]
    assert base not in different and len(set(different)) == len(different)


def test_key_has_no_ambiguous_boundaries():
    p = key_prefix("0.1.0", "abc", False)
    assert item_key(p, "ab", {"c": 1}, None) != item_key(p, "a", {"bc": 1}, None)
    assert item_key(p, "x", {"a": 1}, 1) != item_key(p, "x1", {"a": 1}, None)


def test_unserialisable_reference_is_simply_not_cached():
    assert item_key(key_prefix("v", "c", False), "x", {"answer": 2**70}, None) is None


def test_outage_log_writes_the_start_and_end_of_every_outage_not_every_fault(caplog):
    log = OutageLog(logging.getLogger("test.faults"), "thing", interval_s=60)
    with caplog.at_level(logging.WARNING, logger="test.faults"):
        for _outage in range(2):
            for _ in range(100):
                log.fault("down")
            log.ok()
            log.ok()
    assert [r.getMessage().split(":")[0].split(" after")[0] for r in caplog.records] == [
        "thing outage started", "thing outage ended", "thing outage started", "thing outage ended"]
    assert "100 faults" in caplog.records[1].getMessage()
