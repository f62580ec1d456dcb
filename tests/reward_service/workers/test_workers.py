"""The worker pool's deadlines really stop work: a stuck worker is killed and replaced, its item comes
back `timeout` (masked, reward null) and the rest of the batch is unaffected. Uses the test-only
scorer in slow_scorer.py, whose completions can ask to be slow, stuck, fatal or buggy."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import time

import pytest
import slow_scorer
from service_fixtures import GOOD, MC_REF, NUM_REF, SLOW_SCORER

from reward_service.scoring import RewardConfig
from reward_service.workers import process as worker_process
from reward_service.workers.jobs import chunk_bounds
from reward_service.workers.pool import PoolOverloaded, PoolUnavailable, WorkerPool
from reward_service.workers.process import NICENESS, _score_chunk
from reward_service.workers.protocol import DONE, PART, Progress

CONFIG = RewardConfig.build()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def run(coro_fn, **pool_args):
    """Start a pool, run `coro_fn(pool, restarts)`, close the pool."""

    async def main():
        restarts: list[str] = []
        pool = WorkerPool(scorer=SLOW_SCORER, on_restart=restarts.append, **{"workers": 2, **pool_args})
        await pool.start()
        try:
            return await coro_fn(pool, restarts)
        finally:
            await pool.close()

    return asyncio.run(main())


async def wait_workers(pool: WorkerPool, n: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while pool.ready_workers < n:
        assert time.monotonic() < deadline, "replacement worker did not come up"
        await asyncio.sleep(0.02)


def ok_items(n: int, tag: str = "") -> list:
    # Distinct numerical answers: each result's reward tells which item it belongs to.
    return [(f"<think>{tag}</think><answer>{i}</answer>", NUM_REF | {"answer": float(i)}, None) for i in range(1, n + 1)]


def test_a_stuck_item_is_killed_replaced_and_answered_timeout():
    async def body(pool, restarts):
        pids = {w.process.pid for w in pool._workers}
        items = [*ok_items(6), ("STUCK forever", MC_REF, None), *ok_items(6, "b")]
        start = time.monotonic()
        results = (await pool.score(items, CONFIG, False, 30.0)).results
        elapsed = time.monotonic() - start
        assert elapsed < 3.0  # the item deadline (0.5 s) stopped it, not the request deadline
        stuck = results[6]
        assert stuck["status"] == "timeout" and stuck["mask"] is True and stuck["reward"] is None
        assert all(v is None for v in stuck["components"].values())
        assert "deadline" in stuck["diagnostics"]["error"]
        others = results[:6] + results[7:]
        assert all(r["status"] == "ok" and r["reward"] == 2.0 for r in others)
        assert restarts == ["item_deadline"]
        await wait_workers(pool, 2)
        gone = pids - {w.process.pid for w in pool._workers}
        assert len(gone) == 1
        deadline = time.monotonic() + 5
        killed = next(iter(gone))
        while alive(killed):
            assert time.monotonic() < deadline, "the stuck worker is still alive"
            await asyncio.sleep(0.05)
        again = (await pool.score(ok_items(4), CONFIG, False, 30.0)).results
        assert [r["status"] for r in again] == ["ok"] * 4

    run(body, item_deadline_s=0.5)


def test_a_worker_that_dies_costs_only_its_item():
    async def body(pool, restarts):
        items = [*ok_items(5), ("CRASH now", MC_REF, None), *ok_items(5, "b")]
        results = (await pool.score(items, CONFIG, False, 30.0)).results
        assert results[5]["status"] == "error" and results[5]["mask"] and results[5]["reward"] is None
        assert [r["status"] for i, r in enumerate(results) if i != 5] == ["ok"] * 10
        assert restarts == ["crash"]
        await wait_workers(pool, 2)

    run(body)


def test_a_scorer_exception_is_an_error_item_without_a_restart():
    async def body(pool, restarts):
        results = (await pool.score([*ok_items(2), ("RAISE please", MC_REF, None)], CONFIG, False, 30.0)).results
        assert [r["status"] for r in results] == ["ok", "ok", "error"]
        assert "RuntimeError" in results[2]["diagnostics"]["error"]
        assert restarts == []

    run(body)


def test_the_request_deadline_stops_the_rest_and_keeps_what_was_done():
    async def body(pool, restarts):
        items = [(f"SLEEP 0.3 <answer>{i}</answer>", NUM_REF | {"answer": float(i)}, None) for i in range(1, 9)]
        start = time.monotonic()
        results = (await pool.score(items, CONFIG, False, 1.0)).results
        elapsed = time.monotonic() - start
        assert 0.9 < elapsed < 2.0
        statuses = [r["status"] for r in results]
        assert "timeout" in statuses
        assert statuses.count("ok") >= 2  # items finished inside a running chunk are not thrown away
        for r in results:
            if r["status"] == "ok":
                assert r["reward"] == 1.0  # its own answer, not a neighbour's (format 0, answer 1)
            else:
                assert r["mask"] and r["reward"] is None and "request deadline" in r["diagnostics"]["error"]
        assert set(restarts) == {"request_deadline"}
        await wait_workers(pool, 2)
        assert [r["status"] for r in (await pool.score(ok_items(3), CONFIG, False, 5.0)).results] == ["ok"] * 3

    run(body, item_deadline_s=5.0)


def test_items_scored_before_a_kill_in_the_same_chunk_are_kept():
    async def body(pool, restarts):
        items = [("SLEEP 0.1 <answer>1</answer>", NUM_REF | {"answer": 1.0}, None),
                 ("SLEEP 0.1 <answer>2</answer>", NUM_REF | {"answer": 2.0}, None),
                 ("STUCK", MC_REF, None),
                 ("<answer>3</answer>", NUM_REF | {"answer": 3.0}, None)]
        results = (await pool.score(items, CONFIG, False, 30.0)).results
        assert [r["status"] for r in results] == ["ok", "ok", "timeout", "ok"]
        assert restarts == ["item_deadline"]

    run(body, workers=1, chunk_items=8, item_deadline_s=0.5)


def test_the_next_chunk_a_killed_worker_held_is_scored_by_its_replacement():
    # One worker, chunks of two: it holds [STUCK, 1] and, already sent, [2, 3]. The kill costs only the
    # stuck item; the item after it and the whole next chunk are scored after all, by the replacement.
    async def body(pool, restarts):
        items = [("STUCK", MC_REF, None), *ok_items(4)]
        results = (await pool.score(items, CONFIG, False, 30.0)).results
        assert [r["status"] for r in results] == ["timeout", "ok", "ok", "ok", "ok"]
        assert [r["reward"] for r in results[1:]] == [2.0] * 4
        assert restarts == ["item_deadline"]
        assert pool.inflight_items == 0 and pool.queued_items == 0

    run(body, workers=1, chunk_items=2, item_deadline_s=0.5)


def test_a_worker_that_dies_with_a_next_chunk_loses_only_its_item():
    async def body(pool, restarts):
        items = [*ok_items(1), ("CRASH now", MC_REF, None), *ok_items(3, "b")]
        results = (await pool.score(items, CONFIG, False, 30.0)).results
        assert [r["status"] for r in results] == ["ok", "error", "ok", "ok", "ok"]
        assert restarts == ["crash"]

    run(body, workers=1, chunk_items=2)


def test_items_of_a_chunk_outlive_any_number_of_blamed_neighbours():
    # Each crash is blamed on its own item; the innocent item sharing their chunk is scored in the end.
    async def body(pool, restarts):
        items = [("CRASH now", MC_REF, None)] * 3 + ok_items(5)  # the first chunk: three crashes and an ok
        results = (await pool.score(items, CONFIG, False, 30.0)).results
        assert [r["status"] for r in results] == ["error"] * 3 + ["ok"] * 5
        assert restarts == ["crash"] * 3

    run(body, workers=1, chunk_items=4)


def test_a_request_deadline_spares_the_other_request_whose_chunk_its_worker_held():
    # One worker scores request A's slow item and already holds request B's chunk. A's deadline kills
    # it; B's chunk goes to the replacement and B is answered in full.
    async def body(pool, restarts):
        a = asyncio.ensure_future(pool.score([("SLEEP 5 <answer>B</answer>", MC_REF, None)], CONFIG, False, 0.5))
        await asyncio.sleep(0.05)
        b = asyncio.ensure_future(pool.score(ok_items(1), CONFIG, False, 30.0))
        assert (await a).results[0]["status"] == "timeout"
        assert [r["status"] for r in (await b).results] == ["ok"]
        assert restarts == ["request_deadline"]

    run(body, workers=1, item_deadline_s=10.0)


def test_a_request_that_expires_while_its_chunk_waits_in_a_worker_leaves_the_worker_alone():
    # Request B's chunk waits behind request A's slow item in the one worker; B's deadline passes first.
    # Nothing is killed (A is fine): B is answered timeout at its deadline, A in full, and the pool is
    # clean afterwards (B's chunk is scored and its results dropped).
    async def body(pool, restarts):
        a = asyncio.ensure_future(pool.score([("SLEEP 0.6 <answer>B</answer>", MC_REF, None)], CONFIG, False, 30.0))
        await asyncio.sleep(0.05)
        start = time.monotonic()
        b = (await pool.score(ok_items(1), CONFIG, False, 0.2)).results
        assert time.monotonic() - start < 0.5
        assert b[0]["status"] == "timeout" and "request deadline" in b[0]["diagnostics"]["error"]
        assert [r["status"] for r in (await a).results] == ["ok"]
        assert restarts == []
        await asyncio.sleep(0.1)
        assert pool.inflight_items == 0 and pool.queued_items == 0
        assert [r["status"] for r in (await pool.score(ok_items(2), CONFIG, False, 5.0)).results] == ["ok", "ok"]

    run(body, workers=1, item_deadline_s=10.0)


def test_results_stay_in_item_order_across_chunks_and_workers():
    async def body(pool, restarts):
        for n in (1, 7, 64, 333):
            items = ok_items(n)
            results = (await pool.score(items, CONFIG, False, 30.0)).results
            assert [r["components"]["answer"] for r in results] == [1.0] * n
            assert all(r["reward"] == 2.0 for r in results)
        plain = (await pool.score([(GOOD, MC_REF, 400)], CONFIG, False, 30.0)).results
        assert plain[0]["components"]["length"] == 1.0

    run(body, chunk_items=16)


def test_more_queued_items_than_the_limit_is_refused():
    async def body(pool, restarts):
        slow = [("SLEEP 0.3 <answer>B</answer>", MC_REF, None)] * 4
        first = asyncio.ensure_future(pool.score(slow, CONFIG, False, 30.0))
        await asyncio.sleep(0.05)
        # The worker holds two of the four (the one it scores and the next): two are queued, and 2 + 3 > 4.
        assert pool.queued_items == 2
        with pytest.raises(PoolOverloaded) as refused:
            await pool.score(ok_items(3), CONFIG, False, 30.0)
        assert refused.value.retry_after_s >= 1
        assert [r["status"] for r in (await first).results] == ["ok"] * 4

    run(body, workers=1, chunk_items=1, max_queued_items=4)


def test_close_stops_a_stuck_worker_and_answers_its_items():
    async def body():
        pool = WorkerPool(workers=1, scorer=SLOW_SCORER, item_deadline_s=60.0)
        await pool.start()
        pid = pool._workers[0].process.pid
        job = asyncio.ensure_future(pool.score([("STUCK", MC_REF, None)], CONFIG, False, 60.0))
        await asyncio.sleep(0.2)
        await pool.close(grace_s=0.5)
        result = (await job).results[0]
        assert result["status"] == "error" and "shutting down" in result["diagnostics"]["error"]
        deadline = time.monotonic() + 5
        while alive(pid):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        with pytest.raises(PoolUnavailable):
            await pool.score(ok_items(1), CONFIG, False, 1.0)

    asyncio.run(body())


@pytest.mark.parametrize("n", [0, 1, 2, 7, 64, 511, 512, 4096])
@pytest.mark.parametrize("workers, most", [(1, 1), (2, 64), (2, 8), (16, 64)])
def test_chunks_cover_every_item_once_and_shrink(n, workers, most):
    bounds = chunk_bounds(n, workers, most)
    assert [i for start, stop in bounds for i in range(start, stop)] == list(range(n))
    sizes = [stop - start for start, stop in bounds]
    assert all(1 <= s <= most for s in sizes)
    assert sizes == sorted(sizes, reverse=True)
    if n >= 2 * workers and most >= 2:
        assert len(bounds) >= workers  # every worker gets a share


def test_an_item_pickle_cannot_carry_is_answered_error_and_costs_its_chunk_nothing():
    # The service bounds references before queueing; should anything still fail to pickle, only that
    # item is answered (its own fault: not retryable) and its chunk's other items are scored.
    async def body(pool, restarts):
        unsendable = (GOOD, {**MC_REF, "x": lambda: 0}, None)
        results = (await pool.score([*ok_items(2), unsendable, *ok_items(2, "b")], CONFIG, False, 30.0)).results
        assert [r["status"] for r in results] == ["ok", "ok", "error", "ok", "ok"]
        assert "cannot be sent" in results[2]["diagnostics"]["error"]
        assert results[2]["diagnostics"]["retryable"] is False
        assert restarts == []

    run(body, workers=1)


def test_the_transfer_of_a_big_chunk_does_not_count_against_its_items_deadline():
    # Completions just under max_completion_chars, in characters of 4 UTF-8 bytes, make chunks of 32 MB:
    # sending and unpickling one takes longer than this 30 ms item deadline, scoring any one item does not.
    async def body(pool, restarts):
        text = "\U0001d11e" * 262_000
        items = [(f"<think>{i}{text}</think><answer>B</answer>", MC_REF, None) for i in range(64)]
        results = (await pool.score(items, CONFIG, False, 60.0)).results
        assert [r["status"] for r in results] == ["ok"] * 64
        assert restarts == []

    run(body, workers=1, item_deadline_s=0.03, chunk_items=64)


def test_a_scored_request_leaves_nothing_for_the_garbage_collector():
    """A job's objects (items, results, the callback that wakes its caller) are freed by reference
    counting once it is answered: a reference cycle per request used to leave ~40 objects per one-item
    request for the collector, whose passes then cost the service process ~20% of its time."""
    import gc

    async def body(pool, _restarts):
        await pool.score(ok_items(1), CONFIG, False, 10.0)  # warm: first-use objects are not per request
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            await asyncio.gather(*(pool.score(ok_items(1, str(i)), CONFIG, False, 10.0) for i in range(20)))
            await asyncio.sleep(0)
            gc.collect()
            left = [type(o).__name__ for o in gc.garbage]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
        assert left == []

    run(body)


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux's")
def test_workers_run_as_batch_processes_so_waking_one_never_stalls_the_service():
    async def body(pool, _):
        assert (await pool.score(ok_items(2), CONFIG, False, 30.0)).results[0]["status"] == "ok"
        workers = [w.process.pid for w in pool._workers]
        return ([os.sched_getscheduler(pid) for pid in workers], [os.getpriority(os.PRIO_PROCESS, pid) for pid in workers],
                os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))

    policies, niceness, own_policy, own_niceness = run(body)
    assert policies == [os.SCHED_BATCH, os.SCHED_BATCH]
    assert niceness == [own_niceness + NICENESS] * 2 or own_niceness + NICENESS > 19
    assert own_policy == os.SCHED_OTHER  # the service's own loop keeps the normal policy and priority


def test_each_request_keeps_its_own_item_counts_and_the_work_of_each_item_is_reported_once():
    async def body(pool, _):
        jobs = [pool.score(ok_items(1, tag=str(i)), CONFIG, False, 30.0) for i in range(6)]
        return await asyncio.gather(*jobs), pool._seq

    reported = []
    scored, chunks = run(body, on_scored=reported.append)
    assert [s.stats.items for s in scored] == [{("numerical", "ok"): 1}] * 6
    assert all(not s.stats.durations for s in scored)  # histograms are not carried per request
    durations = [sum(counts[:-1]) for stats in reported for counts in stats.durations.values()]
    rewards = [sum(counts[:-1]) for stats in reported for counts in stats.rewards.values()]
    assert sum(durations) == 6 and sum(rewards) == 6
    assert chunks < 6  # the six requests were coalesced


def test_a_request_coalesced_with_a_slow_one_is_answered_when_it_is_done_not_with_the_chunk():
    # One worker, three requests queued together: the first two share a chunk (the queue is cut in an
    # equal share per free place: 3 items, 2 places). The first is answered when it is scored, not a
    # second later with the slow one beside it.
    async def body(pool, _):
        finished: dict[str, float] = {}

        async def request(name: str, completion: str) -> None:
            await pool.score([(completion, MC_REF, None)], CONFIG, False, 30.0)
            finished[name] = time.monotonic() - start

        start = time.monotonic()
        await asyncio.gather(request("quick", "SLEEP 0.01 <answer>B</answer>"),
                             request("slow", "SLEEP 1.0 <answer>B</answer>"), request("next", GOOD))
        return finished, pool._seq

    finished, chunks = run(body, workers=1)
    assert chunks == 2  # quick and slow in one chunk, next in the other
    assert finished["quick"] < 0.5 and finished["slow"] >= 1.0
    assert list(finished) == ["quick", "slow", "next"]


class _Sent:
    """A worker's end of the channel that keeps what the worker sends."""

    def __init__(self) -> None:
        self.messages: list[tuple] = []

    def send_bytes(self, data: bytes) -> None:
        self.messages.append(pickle.loads(data))


def test_a_chunk_reports_in_parts_only_where_one_of_its_requests_ends(monkeypatch):
    monkeypatch.setattr(worker_process, "_FLUSH_S", 60.0)  # no part for a slow chunk's sake: a stalled host
    items = [("SLEEP 0.002 <answer>B</answer>", MC_REF, None)] * 5
    sent = _Sent()
    _score_chunk(sent, 7, slow_scorer.score, items, [2, 1, 2], CONFIG, False, Progress(multiprocessing.get_context()))
    assert [(kind, offset, len(results)) for kind, _, offset, results, *_ in sent.messages] == [
        (PART, 0, 2), (PART, 2, 1), (DONE, 3, 2)]
    assert [counts for *_, counts, _, _ in sent.messages] == [
        {0: {("multiple_choice", "ok"): 2}}, {1: {("multiple_choice", "ok"): 1}}, {2: {("multiple_choice", "ok"): 2}}]
    batch = _Sent()  # one request's chunk (a batch's): its results go at its end
    _score_chunk(batch, 8, slow_scorer.score, items, [5], CONFIG, False, Progress(multiprocessing.get_context()))
    assert [(kind, offset, len(results)) for kind, _, offset, results, *_ in batch.messages] == [(DONE, 0, 5)]
