"""The pool's bookkeeping without processes: chunks, results in order, blame on a lost worker."""

from __future__ import annotations

from service_fixtures import MC_REF

from reward_service.scoring import RewardConfig
from reward_service.service.item_stats import ItemStats
from reward_service.workers.jobs import MAX_ATTEMPTS, Job, JobQueue

CONFIG = RewardConfig.build()


def ok(i: int) -> dict:
    return {"status": "ok", "mask": False, "reward": float(i), "components": {}, "diagnostics": {"notes": []}}


def job_of(n: int) -> tuple[Job, list[str]]:
    done: list[str] = []
    return Job([(f"c{i}", MC_REF, None) for i in range(n)], CONFIG, False, lambda: done.append("done")), done


def test_a_job_is_cut_into_chunks_and_finishes_when_every_result_is_in():
    queue = JobQueue(workers=2, chunk_items=4)
    job, done = job_of(10)
    queue.add(job)
    assert queue.queued == 10
    chunks = []
    while (chunk := queue.pop()) is not None:
        chunks.append(chunk)
    assert queue.queued == 0
    assert [p for c in chunks for p in c.positions] == list(range(10))
    for chunk in reversed(chunks):  # results may come back in any order
        queue.record(chunk, 0, [ok(p) for p in chunk.positions], ItemStats())
        queue.complete(chunk)
    assert done == ["done"] and job.remaining == 0
    assert [r["reward"] for r in job.results] == [float(i) for i in range(10)]


def test_a_lost_worker_blames_only_the_item_it_was_scoring():
    queue = JobQueue(workers=1, chunk_items=8)
    job, done = job_of(5)
    queue.add(job)
    chunk = queue.pop()
    assert chunk.positions == [0, 1, 2]
    queue.record(chunk, 0, [ok(0)], ItemStats())  # item 0 reported, then the worker was lost on item 1
    queue.settle(chunk, 1, "timeout", "item deadline passed")
    assert job.results[1]["status"] == "timeout" and job.results[1]["diagnostics"]["retryable"] is False
    again = queue.pop()
    assert again.positions == [2] and again.attempts == 0  # back at the front, no attempt counted
    while again is not None:
        queue.record(again, 0, [ok(p) for p in again.positions], ItemStats())
        queue.complete(again)
        again = queue.pop()
    assert done == ["done"] and [r["status"] for r in job.results] == ["ok", "timeout", "ok", "ok", "ok"]
    assert job.stats.items == {("multiple_choice", "timeout"): 1}


def test_a_chunk_lost_with_nobody_to_blame_is_answered_error_after_its_attempts():
    queue = JobQueue(workers=1, chunk_items=8)
    job, done = job_of(2)
    queue.add(job)
    for _ in range(MAX_ATTEMPTS):
        queue.settle(queue.pop(), -1, "error", "scoring process died")
    assert done == ["done"] and len(queue) == 0
    assert all(r["status"] == "error" and r["diagnostics"]["retryable"] for r in job.results)


def test_failing_a_job_drops_its_queued_chunks_and_spares_the_others():
    queue = JobQueue(workers=1, chunk_items=2)
    a, a_done = job_of(6)
    b, _ = job_of(2)
    queue.add(a)
    queue.add(b)
    queue.fail_unfinished(a, "timeout", "request deadline passed", retryable=True)
    assert a_done == ["done"] and all(r["status"] == "timeout" for r in a.results)
    assert queue.queued == 2 and queue.pop().job is b
