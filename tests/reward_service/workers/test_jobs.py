"""The pool's bookkeeping without processes: chunks, results in order, blame on a lost worker."""

from __future__ import annotations

from service_fixtures import MC_REF

from reward_service.scoring import RewardConfig
from reward_service.workers.jobs import MAX_ATTEMPTS, Job, JobQueue

CONFIG = RewardConfig.build()


def ok(i: int) -> dict:
    return {"status": "ok", "mask": False, "reward": float(i), "components": {}, "diagnostics": {"notes": []}}


def positions(chunk) -> list[int]:
    return [p for _, p in chunk.slots]


def job_of(n: int) -> tuple[Job, list[str]]:
    done: list[str] = []
    return Job([(f"c{i}", MC_REF, None) for i in range(n)], CONFIG, False, lambda _job: done.append("done")), done


def test_a_job_is_cut_into_chunks_and_finishes_when_every_result_is_in():
    queue = JobQueue(workers=2, chunk_items=4)
    job, done = job_of(10)
    queue.add(job)
    assert queue.queued == 10
    chunks = []
    while (chunk := queue.pop()) is not None:
        chunks.append(chunk)
    assert queue.queued == 0
    assert [p for c in chunks for p in positions(c)] == list(range(10))
    for chunk in reversed(chunks):  # results may come back in any order
        queue.record(chunk, 0, [ok(p) for p in positions(chunk)], {}, {})
    assert done == ["done"] and job.remaining == 0
    assert [r["reward"] for r in job.results] == [float(i) for i in range(10)]


def test_a_lost_worker_blames_only_the_item_it_was_scoring():
    queue = JobQueue(workers=1, chunk_items=8)
    job, done = job_of(5)
    queue.add(job)
    chunk = queue.pop()
    assert positions(chunk) == [0, 1, 2]
    queue.record(chunk, 0, [ok(0)], {}, {})  # item 0 reported, then the worker was lost on item 1
    queue.settle(chunk, 1, "timeout", "item deadline passed")
    assert job.results[1]["status"] == "timeout" and job.results[1]["diagnostics"]["retryable"] is False
    again = queue.pop()
    assert positions(again) == [2] and again.attempts == 0  # back at the front, no attempt counted
    while again is not None:
        queue.record(again, 0, [ok(p) for p in positions(again)], {}, {})
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
    assert queue.queued == 2 and queue.pop().only(b)


def test_small_jobs_queued_together_are_coalesced_into_one_chunk_and_batches_are_not():
    queue = JobQueue(workers=2, chunk_items=4)
    singles = [job_of(1) for _ in range(6)]
    for job, _ in singles:
        queue.add(job)
    batch, _ = job_of(8)
    queue.add(batch)
    first = queue.pop()
    assert [j for j in first.jobs()] == [job for job, _ in singles[:4]] and len(first) == 4
    assert first.message()[-1] == [1, 1, 1, 1]  # one segment per request: each keeps its own metrics
    second = queue.pop()
    assert second.jobs() == [job for job, _ in singles[4:]]  # stops before the batch's chunks
    assert all(queue.pop().only(batch) for _ in range(len(queue)))
    queue.record(first, 0, [ok(i) for i in range(4)], {2: {("multiple_choice", "ok"): 1}}, {})
    assert all(done == ["done"] for _, done in singles[:4])
    assert singles[2][0].stats.items == {("multiple_choice", "ok"): 1} and singles[0][0].stats.items == {}


def test_a_part_answers_the_coalesced_requests_it_completes_before_the_chunk_is_done():
    # A worker reports a chunk of coalesced requests in parts, as its requests are done: each request is
    # answered with its part, and its counts are kept, while the rest of the chunk is still being scored.
    queue = JobQueue(workers=1, chunk_items=8)
    one, one_done = job_of(1)
    two, two_done = job_of(2)
    last, last_done = job_of(1)
    for job in (one, two, last):
        queue.add(job)
    chunk = queue.pop()
    assert chunk.jobs() == [one, two, last]
    queue.record(chunk, 0, [ok(0), ok(1)], {0: {("multiple_choice", "ok"): 1}, 1: {("multiple_choice", "ok"): 1}}, {})
    assert one_done == ["done"] and one.stats.items == {("multiple_choice", "ok"): 1}
    assert two_done == [] and two.remaining == 1  # half of its items are in: it waits for the rest
    queue.record(chunk, 2, [ok(2), ok(3)], {1: {("multiple_choice", "ok"): 1}, 2: {("multiple_choice", "ok"): 1}}, {})
    assert two_done == ["done"] and two.stats.items == {("multiple_choice", "ok"): 2}
    assert [r["reward"] for r in two.results] == [1.0, 2.0]
    assert last_done == ["done"] and one_done == ["done"]  # each finished once
    assert not queue.jobs


def test_a_lost_coalesced_chunk_blames_one_request_and_requeues_the_others():
    queue = JobQueue(workers=1, chunk_items=8)
    singles = [job_of(1) for _ in range(3)]
    for job, _ in singles:
        queue.add(job)
    chunk = queue.pop()
    queue.settle(chunk, 1, "timeout", "item deadline passed")
    assert singles[1][1] == ["done"] and singles[1][0].results[0]["status"] == "timeout"
    again = queue.pop()
    assert again.jobs() == [singles[0][0], singles[2][0]]


def test_an_invalid_reference_is_reported_apart_never_as_a_result():
    queue = JobQueue(workers=1, chunk_items=8)
    job, done = job_of(2)
    queue.add(job)
    chunk = queue.pop()
    queue.record(chunk, 0, [None, ok(1)], {}, {0: "reference.answer: must be a finite number"})
    assert done == ["done"] and job.invalid == [(0, "reference.answer: must be a finite number")]
    assert job.results[0] is None and job.results[1]["status"] == "ok"


def test_coalesced_requests_with_equal_references_send_one_reference_object():
    # OpenRLHF posts each rollout of a group as a request of its own, each with its own copy of the
    # group's reference: the chunk that coalesces them sends one object (pickled once, validated once).
    queue = JobQueue(workers=2, chunk_items=8)
    other = {**MC_REF, "answer": "C"}
    refs = [dict(MC_REF), dict(MC_REF), dict(MC_REF), dict(other), dict(other)]
    jobs = [Job([(f"c{i}", ref, None)], CONFIG, False) for i, ref in enumerate(refs)]
    for job in jobs:
        queue.add(job)
    chunk = queue.pop()
    assert len(chunk) == 5
    sent = chunk.message()[4]
    assert [completion for completion, _, _ in sent] == ["c0", "c1", "c2", "c3", "c4"]
    assert [ref for _, ref, _ in sent] == refs  # the same values, in order
    assert sent[0][1] is sent[1][1] is sent[2][1] and sent[3][1] is sent[4][1]
    assert sent[2][1] is not sent[3][1]
    assert all(job.items[0][1] is ref for job, ref in zip(jobs, refs, strict=True))  # the jobs' own items untouched
