"""The pool's bookkeeping, with no process and no event loop: jobs (one `WorkerPool.score` call each),
the chunks they are cut into, the queue of chunks waiting for a worker, and what happens to a chunk's
items when its worker is lost. Unit-tested without forking (tests/reward_service/workers/test_jobs.py).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from reward_service.scoring import RewardConfig, ScoreResult
from reward_service.service.item_stats import ItemStats, task_label
from reward_service.workers.protocol import WorkItem, encode

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

    __slots__ = ("config_dict", "config_id", "done", "explain", "items", "on_done", "remaining", "results",
                 "stats", "timer")

    def __init__(self, items: Sequence[WorkItem], config: RewardConfig, explain: bool,
                 on_done: Callable[[], None] = lambda: None) -> None:
        self.items = items
        self.config_id = config.id
        self.config_dict = config.to_dict()
        self.explain = explain
        self.on_done = on_done
        self.results: list[dict[str, Any] | None] = [None] * len(items)
        self.remaining = len(items)
        self.stats = ItemStats()  # of its items, scored or not
        self.done = False
        self.timer: Any = None  # the request deadline's timer handle, owned by the pool

    def unscored(self, positions: Sequence[int], status: str, message: str, *, retryable: bool = False) -> None:
        for position in positions:
            result = ScoreResult.unscored(status, message, retryable=retryable).to_dict()
            self.results[position] = result
            self.stats.add(task_label(self.items[position][1]), result)
        self.remaining -= len(positions)


class Chunk:
    """Consecutive items of one job, sent to a worker as one message."""

    __slots__ = ("attempts", "due_from", "job", "positions", "reported", "seq", "size")

    def __init__(self, job: Job, positions: list[int], attempts: int = 0) -> None:
        self.job = job
        self.positions = positions
        self.attempts = attempts
        self.reported = 0  # results received so far, for the first `reported` positions
        self.seq = 0  # set when sent: the worker tags its progress and results with it
        self.due_from = 0.0  # when it became its worker's current chunk
        self.size = 0  # bytes of its message, set when sent

    def message(self) -> tuple[Any, ...]:
        job = self.job
        return (self.seq, job.config_id, job.config_dict, job.explain, [job.items[p] for p in self.positions])

    @property
    def unreported(self) -> int:
        return len(self.positions) - self.reported


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
        for start, stop in chunk_bounds(len(job.items), self._workers, self._chunk_items):
            self._chunks.append(Chunk(job, list(range(start, stop))))
        self.queued += len(job.items)

    def pop(self) -> Chunk | None:
        """The next chunk to send (never one of a finished job: finishing drops them)."""
        if not self._chunks:
            return None
        chunk = self._chunks.popleft()
        self.queued -= len(chunk.positions)
        return chunk

    def requeue(self, chunk: Chunk) -> None:
        """Queue a chunk that holds no reported item at the front: its items were dispatched once already."""
        if chunk.positions and not chunk.job.done:
            self._chunks.appendleft(chunk)
            self.queued += len(chunk.positions)

    def drop(self, job: Job) -> None:
        """Forget the queued chunks of `job`."""
        kept = deque(c for c in self._chunks if c.job is not job)
        self.queued = sum(len(c.positions) for c in kept)
        self._chunks = kept

    def record(self, chunk: Chunk, offset: int, results: list[dict[str, Any]], stats: ItemStats) -> None:
        """Results of a chunk's items from `offset` on, as its worker reported them."""
        job = chunk.job
        if not job.done:
            for position, result in zip(chunk.positions[offset:offset + len(results)], results, strict=True):
                job.results[position] = result
            job.remaining -= len(results)
            job.stats.merge(stats)
        chunk.reported = offset + len(results)

    def complete(self, chunk: Chunk) -> None:
        """The chunk's worker said it is done: finish its job if that was the last of it."""
        job = chunk.job
        if not job.done and job.remaining == 0:
            self.finish(job)

    def settle(self, chunk: Chunk, index: int, status: str, message: str) -> None:
        """The chunk's worker was lost while scoring its item `index` (negative: none had started). That
        item is answered `status`, the others go back to the front of the queue; a chunk lost too often
        with nobody to blame has its items answered `error`."""
        job = chunk.job
        if job.done:
            return
        index = index - chunk.reported if index >= 0 else -1
        positions = chunk.positions[chunk.reported:]
        attempts = chunk.attempts
        if 0 <= index < len(positions):
            job.unscored([positions[index]], status, message)
            positions = positions[:index] + positions[index + 1:]
        else:  # no item to blame: the chunk itself counts a lost attempt
            attempts += 1
        if positions and attempts >= MAX_ATTEMPTS:
            job.unscored(positions, "error", "scoring process lost too often", retryable=True)
        else:
            self.requeue(Chunk(job, positions, attempts))
        if job.remaining == 0:
            self.finish(job)

    def without_unsendable(self, chunk: Chunk) -> Chunk | None:
        """The chunk less the items that cannot be pickled, which are answered `error` (their own fault):
        one such item must not cost the others of its chunk, or its worker, anything."""
        job = chunk.job
        bad = []
        for position in chunk.positions:
            try:
                encode(job.items[position])
            except Exception:  # RecursionError, PicklingError, ...: whatever pickle refuses
                bad.append(position)
        job.unscored(bad, "error", "the item cannot be sent to a scoring process")
        rest = [p for p in chunk.positions if p not in bad]
        if job.remaining == 0:
            self.finish(job)
        return Chunk(job, rest, chunk.attempts) if rest else None

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
        job.on_done()

    def clear(self) -> None:
        self._chunks.clear()
        self.queued = 0
