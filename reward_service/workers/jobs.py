"""The pool's bookkeeping, with no process and no event loop: jobs (one `WorkerPool.score` call each),
the chunks they are cut into (and small jobs coalesced into), the queue of chunks waiting for a
worker, and what happens to a chunk's items when its worker is lost. Unit-tested without forking
(tests/reward_service/workers/test_jobs.py).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from reward_service.scoring import RewardConfig, ScoreResult
from reward_service.service.item_stats import ItemStats, task_label
from reward_service.workers.protocol import WorkItem, encode, share_references

MAX_ATTEMPTS = 3  # a chunk lost this often with no item to blame has its items answered "error"
LEAST_ITEMS = 2  # items in a chunk, but for a batch's last one


def chunk_bounds(n: int, workers: int, most: int) -> list[tuple[int, int]]:
    """Split n items into chunks that shrink as the batch runs out ("guided" scheduling).

    Big chunks first cost few round trips; small ones last let every worker finish at about the same
    time, so a batch's latency is not set by the one worker that drew the last big chunk. `most`
    also bounds the work redone when a worker is lost.
    """
    bounds = []
    start = 0
    while start < n:
        size = min(most, max(LEAST_ITEMS, math.ceil((n - start) / (2 * workers))))
        bounds.append((start, min(n, start + size)))
        start += size
    return bounds


class Job:
    """One `score` call: its items, and their results in item order, filled as chunks come back."""

    __slots__ = ("config", "config_id", "done", "explain", "invalid", "items", "on_done", "remaining",
                 "results", "stats", "timer")

    def __init__(self, items: Sequence[WorkItem], config: RewardConfig, explain: bool,
                 on_done: Callable[[Job], None] = lambda _: None) -> None:
        self.items = items
        self.config = config  # sent as a dict, once per chunk (`Chunk.message`), not built per request
        self.config_id = config.id
        self.explain = explain
        # Called with the job, so that it need not hold itself: a callback closing over its job made a
        # reference cycle per request, which only the garbage collector could free, with the request's
        # items and results (about 40 objects per one-item request; see `WorkerPool.score`).
        self.on_done = on_done
        self.results: list[dict[str, Any] | None] = [None] * len(items)
        self.remaining = len(items)
        self.stats = ItemStats()  # of its items, scored or not
        self.invalid: list[tuple[int, str]] = []  # (position, why) of items whose reference is invalid
        self.done = False
        self.timer: Any = None  # the request deadline's timer handle, owned by the pool

    def unscored(self, positions: Sequence[int], status: str, message: str, *, retryable: bool = False) -> None:
        for position in positions:
            result = ScoreResult.unscored(status, message, retryable=retryable).to_dict()
            self.results[position] = result
            self.stats.add(task_label(self.items[position][1]), result)
        self.remaining -= len(positions)


Slot = tuple[Job, int]  # an item: its job and its position in the job


class Chunk:
    """Items sent to a worker as one message: consecutive items of one job, or (`JobQueue.pop`) several
    small jobs of the same config coalesced, so that concurrent one-item requests (OpenRLHF sends one
    rollout per request) cost the workers one message per chunk, not one per request."""

    __slots__ = ("attempts", "due_from", "reported", "seq", "size", "slots", "whole")

    def __init__(self, slots: list[Slot], attempts: int = 0, whole: bool = False) -> None:
        self.slots = slots
        self.attempts = attempts
        self.whole = whole  # all of its jobs' items: may be coalesced with others (a batch's chunks never are)
        self.reported = 0  # results received so far, for the first `reported` slots
        self.seq = 0  # set when sent: the worker tags its progress and results with it
        self.due_from = 0.0  # when it became its worker's current chunk
        self.size = 0  # bytes of its message, set when sent

    def __len__(self) -> int:
        return len(self.slots)

    @property
    def key(self) -> tuple[str, bool]:
        """What chunks must share to be coalesced: one message has one config."""
        job = self.slots[0][0]
        return job.config_id, job.explain

    def segments(self) -> list[tuple[Job, int]]:
        """Runs of consecutive slots of the same job: (job, length)."""
        runs: list[tuple[Job, int]] = []
        for job, _ in self.slots:
            if runs and runs[-1][0] is job:
                runs[-1] = (job, runs[-1][1] + 1)
            else:
                runs.append((job, 1))
        return runs

    def jobs(self) -> list[Job]:
        return [job for job, _ in self.segments()]

    def only(self, job: Job) -> bool:
        return all(j is job for j, _ in self.slots)

    def message(self) -> tuple[Any, ...]:
        """What the worker is sent (protocol.py). The items of coalesced requests share their equal
        references (`share_references`): OpenRLHF posts a group's rollouts as requests of their own, each
        with its own copy of the group's reference, so the chunk sends it once and the worker validates
        it once (a job's own items already share theirs: `RewardService.score`)."""
        job = self.slots[0][0]
        segments = self.segments()
        items = [j.items[p] for j, p in self.slots]
        return (self.seq, job.config_id, job.config.to_dict(), job.explain,
                share_references(items) if len(segments) > 1 else items, [n for _, n in segments])

    @property
    def unreported(self) -> int:
        return len(self.slots) - self.reported


class JobQueue:
    """Jobs in progress and the FIFO of their chunks waiting for a worker."""

    def __init__(self, *, workers: int, chunk_items: int) -> None:
        self._workers = workers
        self._chunk_items = chunk_items
        self._chunks: deque[Chunk] = deque()
        self.queued = 0  # items in `_chunks`
        self.jobs: set[Job] = set()

    def __len__(self) -> int:
        return len(self._chunks)

    def add(self, job: Job) -> None:
        self.jobs.add(job)
        bounds = chunk_bounds(len(job.items), self._workers, self._chunk_items)
        for start, stop in bounds:
            self._chunks.append(Chunk([(job, p) for p in range(start, stop)], whole=len(bounds) == 1))
        self.queued += len(job.items)

    def pop(self, most: int | None = None) -> Chunk | None:
        """The next chunk to send (never one of a finished job: finishing drops them). A small job's chunk
        takes with it the small jobs queued right behind it with the same config, up to `most` items
        (at most `chunk_items`): batching happens only when several requests are queued together, so a
        lone request never waits for company."""
        if not self._chunks:
            return None
        chunk = self._chunks.popleft()
        self.queued -= len(chunk)
        if chunk.whole:
            chunks, key = self._chunks, chunk.key
            most = self._chunk_items if most is None else min(most, self._chunk_items)
            while chunks and chunks[0].whole and len(chunk) + len(chunks[0]) <= most and chunks[0].key == key:
                other = chunks.popleft()
                self.queued -= len(other)
                chunk.slots += other.slots
                chunk.attempts = max(chunk.attempts, other.attempts)
        return chunk

    def requeue(self, chunk: Chunk) -> None:
        """Queue a chunk that holds no reported item at the front: its items were dispatched once already."""
        chunk.slots = [(job, p) for job, p in chunk.slots if not job.done]
        if chunk.slots:
            self._chunks.appendleft(chunk)
            self.queued += len(chunk)

    def drop(self, job: Job) -> None:
        """Forget the queued items of `job`."""
        kept: deque[Chunk] = deque()
        for chunk in self._chunks:
            if any(j is job for j, _ in chunk.slots):
                chunk.slots = [(j, p) for j, p in chunk.slots if j is not job]
            if chunk.slots:
                kept.append(chunk)
        self.queued = sum(len(c) for c in kept)
        self._chunks = kept

    def record(self, chunk: Chunk, offset: int, results: list[dict[str, Any] | None],
               counts: dict[int, dict[tuple[str, str], int]], invalid: dict[int, str]) -> None:
        """Results of a chunk's items from `offset` on, as its worker reported them (None, with the reason
        in `invalid` by index in the chunk, for an invalid reference), and their counts by (task, status)
        by segment (`Chunk.segments`). A job they complete is finished now: a chunk of coalesced requests
        reports each request's results soon after it is done (workers/process.py: `_score_chunk`), and
        its request is answered then, not when the chunk's last item is done."""
        for k, ((job, position), result) in enumerate(zip(chunk.slots[offset:offset + len(results)], results,
                                                           strict=True)):
            if not job.done:
                if result is None:
                    job.invalid.append((position, invalid[offset + k]))
                else:
                    job.results[position] = result
                job.remaining -= 1
        if counts:
            segments = chunk.segments()
            for segment, segment_counts in counts.items():
                job = segments[segment][0]
                if not job.done:
                    job.stats.count(segment_counts)
        chunk.reported = offset + len(results)
        for job, _ in chunk.slots[offset:chunk.reported]:
            if job.remaining == 0:
                self.finish(job)  # does nothing for a job already finished

    def settle(self, chunk: Chunk, index: int, status: str, message: str) -> None:
        """The chunk's worker was lost while scoring its item `index` (negative: none had started). That
        item is answered `status`, the others go back to the front of the queue; a chunk lost too often
        with nobody to blame has its items answered `error`."""
        index = index - chunk.reported if index >= 0 else -1
        rest = chunk.slots[chunk.reported:]
        attempts = chunk.attempts
        if 0 <= index < len(rest):
            job, position = rest[index]
            if not job.done:
                job.unscored([position], status, message)
            rest = rest[:index] + rest[index + 1:]
        else:  # no item to blame: the chunk itself counts a lost attempt
            attempts += 1
        rest = [(job, p) for job, p in rest if not job.done]
        if rest and attempts >= MAX_ATTEMPTS:
            for job, position in rest:
                job.unscored([position], "error", "scoring process lost too often", retryable=True)
        else:
            self.requeue(Chunk(rest, attempts))
        for job in chunk.jobs():
            if not job.done and job.remaining == 0:
                self.finish(job)

    def without_unsendable(self, chunk: Chunk) -> Chunk | None:
        """The chunk less the items that cannot be pickled, which are answered `error` (their own fault):
        one such item must not cost the others of its chunk, or its worker, anything."""
        rest: list[Slot] = []
        for job, position in chunk.slots:
            try:
                encode(job.items[position])
            except Exception:  # RecursionError, PicklingError, ...: whatever pickle refuses
                job.unscored([position], "error", "the item cannot be sent to a scoring process")
                if job.remaining == 0:
                    self.finish(job)
            else:
                rest.append((job, position))
        return Chunk(rest, chunk.attempts) if rest else None

    def fail_unfinished(self, job: Job, status: str, message: str, *, retryable: bool = False) -> None:
        """Answer every item of `job` still without a result `status`, and finish it."""
        self.drop(job)
        job.unscored([p for p, r in enumerate(job.results) if r is None], status, message, retryable=retryable)
        self.finish(job)

    def finish(self, job: Job) -> None:
        if job.done:
            return
        job.done = True
        self.jobs.discard(job)
        job.on_done(job)

    def clear(self) -> None:
        self._chunks.clear()
        self.queued = 0
