"""Scoring in worker processes, with per-item and per-request deadlines that really stop the work.

Why not pebble or loky: both time out a whole task, and a task here is a chunk of items (one item
per task would cost a round trip per item). We need to know *which* item of a chunk is stuck, to
kill only that worker, answer that item `timeout` and score the rest of its chunk elsewhere; and we
want results delivered on the event loop without a thread per call. So this is a small pool of our
own on `multiprocessing` primitives:

* each worker owns a socketpair to the service and a three-slot shared array where it writes the
  chunk, the index and the start time (monotonic clock, the same in every process) of the item it is
  scoring;
* a worker holds up to two chunks: the one it scores and the next, already in its socket, so it never
  waits for the service (whose one thread may be busy parsing a request) between chunks. The service
  reads and writes the sockets through asyncio transports: a send never blocks the event loop;
* the service sets a timer for the item deadline of a worker's current chunk; when it fires it reads
  the shared array: if the current item started more than the deadline ago the worker is SIGKILLed
  and replaced, the item becomes `timeout` (mask true, reward null) and the chunk's other items, and
  the next chunk, go back to the front of the queue. Otherwise the timer is set again for the
  current item's own deadline;
* a request deadline timer kills the workers still busy with that request and answers its unfinished
  items `timeout`; a worker that dies (crash, OOM kill) costs its current item an `error`;
* workers are forked from a forkserver that has preloaded and warmed the scoring code, so a
  replacement is ready in milliseconds, and forking never happens from the threaded service process.

The package: `protocol` (messages, the shared progress slot), `channel` (the framed socket), `jobs`
(jobs, chunks and their queue: the bookkeeping, without processes), this pool (processes, timers,
dispatch), `process` (the code that runs in a worker) and `preload` (what the forkserver warms).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import pickle
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from reward_service.scoring import RewardConfig
from reward_service.service.item_stats import ItemStats
from reward_service.service.settings import default
from reward_service.workers.channel import Channel
from reward_service.workers.jobs import Chunk, Job, JobQueue
from reward_service.workers.process import worker_main
from reward_service.workers.protocol import DONE, FAILED, PART, READY, Progress, WorkItem, encode

log = logging.getLogger("reward_service.workers")

_DEPTH = 2  # chunks a worker holds: the one it scores and the next
# A chunk's transfer and unpickling never count against its items' deadline: until its first item starts
# the chunk is allowed the item deadline plus its size at this rate (a slow, loaded machine's, far below a
# local socket's), after which a worker that has not started it counts as lost with nobody to blame.
_SLOWEST_TRANSFER_BYTES_PER_S = 10e6


class PoolUnavailable(Exception):
    """The pool is starting, closing, or could not start its workers."""


class PoolOverloaded(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many queued items; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass
class Scored:
    """What `WorkerPool.score` returns: results in item order (`ScoreResult.to_dict()` shape), the items'
    counts by task and status (and the metrics of those answered here: timeouts, errors; the histograms
    of the scoring work went to `on_scored` as each chunk came back), and (position, why) of the items
    whose reference is invalid (their results are None)."""

    results: list[dict[str, Any] | None]
    stats: ItemStats
    invalid: list[tuple[int, str]]


class _Worker:
    __slots__ = ("channel", "chunks", "process", "progress", "ready", "timer")

    def __init__(self, process: Any, progress: Progress) -> None:
        self.process = process
        self.progress = progress
        self.channel: Channel | None = None
        self.ready = False
        self.chunks: deque[Chunk] = deque()  # sent, not finished; the first is being scored
        self.timer: asyncio.TimerHandle | None = None

    def current_index(self) -> int:
        """Index in its current chunk of the item the worker is scoring; -1 if none has started."""
        reading = self.progress.read()
        if not self.chunks or reading is None or reading[0] != self.chunks[0].seq:
            return -1
        return reading[1]


class WorkerPool:
    """Scoring processes fed chunks of items from one FIFO queue, on the service's event loop."""

    def __init__(
        self,
        *,
        workers: int,
        scorer: str = default("scorer"),
        item_deadline_s: float = default("item_deadline_s"),
        chunk_items: int = default("chunk_items"),
        max_queued_items: int = default("max_queued_items"),
        on_restart: Callable[[str], None] = lambda _: None,
        on_scored: Callable[[ItemStats], None] = lambda _: None,
    ) -> None:
        self._size = workers
        self._scorer = scorer
        self._item_deadline = item_deadline_s
        self._max_queued = max_queued_items
        self._on_restart = on_restart
        self._on_scored = on_scored  # the histograms of each chunk's scoring work, as it comes back
        self._ctx = multiprocessing.get_context("forkserver")
        self._workers: list[_Worker] = []
        self._queue = JobQueue(workers=workers, chunk_items=chunk_items)
        self._seq = 0
        self._item_seconds = 0.001  # moving average of one item's cost, for Retry-After
        self._started = False
        self._failure: str | None = None
        self._ready_changed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._respawns: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()
        self._dispatch_soon = False

    # ---------------------------------------------------------------- state

    @property
    def ready(self) -> bool:
        return self._started and not self._closed.is_set()

    @property
    def queued_items(self) -> int:
        return self._queue.queued

    @property
    def inflight_items(self) -> int:
        return sum(c.unreported for w in self._workers for c in w.chunks)

    @property
    def ready_workers(self) -> int:
        return sum(1 for w in self._workers if w.ready)

    def retry_after_s(self) -> int:
        """Seconds until the queue has drained, by the recent cost of an item."""
        wait = self._queue.queued * self._item_seconds / max(1, self._size)
        return max(1, min(60, math.ceil(wait)))

    # ---------------------------------------------------------------- life cycle

    async def start(self, timeout_s: float = 120.0) -> None:
        """Start every worker and wait until each has loaded the scorer. Raises PoolUnavailable."""
        self._loop = asyncio.get_running_loop()
        # Preload and warm the scoring code in the forkserver: every fork starts with it ready.
        self._ctx.set_forkserver_preload(["reward_service.workers.process", "reward_service.workers.preload"])
        spawned = await asyncio.gather(*(self._loop.run_in_executor(None, self._spawn) for _ in range(self._size)))
        for worker, sock in spawned:
            await self._register(worker, sock)
        deadline = time.monotonic() + timeout_s
        while self.ready_workers < self._size:
            if self._failure is not None:
                raise PoolUnavailable(self._failure)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PoolUnavailable(f"workers not ready after {timeout_s} s")
            self._ready_changed.clear()
            try:
                await asyncio.wait_for(self._ready_changed.wait(), remaining)
            except asyncio.TimeoutError:
                continue
        self._started = True
        log.info("worker pool ready", extra={"fields": {"workers": self._size, "scorer": self._scorer}})

    async def close(self, grace_s: float = 2.0) -> None:
        """Answer unfinished work `error`, ask workers to exit, and kill those that do not."""
        self._closed.set()
        # Let replacements being forked finish: `_respawn` then stops them. Cancelling would orphan a
        # process that the executor thread is still starting.
        await asyncio.gather(*self._respawns, return_exceptions=True)
        for job in list(self._queue.jobs):
            self._queue.fail_unfinished(job, "error", "service shutting down", retryable=True)
        self._queue.clear()
        workers, self._workers = self._workers, []
        for w in workers:
            if w.channel is not None:
                w.channel.send(encode(None))
            self._detach(w)
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, w.process.join, grace_s) for w in workers))
        for w in workers:
            if w.process.is_alive():
                w.process.kill()
            if w.channel is not None:
                w.channel.close()

    def _spawn(self) -> tuple[_Worker, socket.socket]:
        """Blocking (run in a thread): fork one worker from the forkserver."""
        parent, child = self._ctx.Pipe(duplex=True)
        progress = Progress(self._ctx)
        process = self._ctx.Process(target=worker_main, args=(child, progress, self._scorer),
                                    name="reward-worker", daemon=True)
        try:
            process.start()
        finally:
            child.close()
        # The service's end as a socket of its own, for an asyncio transport.
        sock = socket.socket(fileno=os.dup(parent.fileno()))
        parent.close()
        return _Worker(process, progress), sock

    async def _register(self, worker: _Worker, sock: socket.socket) -> None:
        assert self._loop is not None
        channel = Channel(lambda message: self._on_message(worker, message), lambda: self._on_lost_channel(worker))
        worker.channel = channel
        # Listed first: its "ready" may be read before the connection coroutine returns, and must find
        # it there to be given work.
        self._workers.append(worker)
        await self._loop.create_unix_connection(lambda: channel, sock=sock)

    def _detach(self, worker: _Worker) -> None:
        """Stop listening to a worker and forget it (the caller kills or stops the process)."""
        if worker.timer is not None:
            worker.timer.cancel()
            worker.timer = None
        if worker in self._workers:
            self._workers.remove(worker)

    def _replace(self, worker: _Worker, reason: str) -> None:
        """Kill `worker` (if still alive) and start another in its place."""
        self._detach(worker)
        if worker.process.is_alive():
            worker.process.kill()
        if worker.channel is not None:
            worker.channel.close()
        self._on_restart(reason)
        assert self._loop is not None
        # Reap it off the loop: join blocks until the forkserver reports the exit status.
        self._loop.run_in_executor(None, worker.process.join, 5.0)
        if not self._closed.is_set():
            task = self._loop.create_task(self._respawn())
            self._respawns.add(task)
            task.add_done_callback(self._respawns.discard)

    async def _respawn(self) -> None:
        assert self._loop is not None
        delay = 0.05
        while not self._closed.is_set():
            try:
                worker, sock = await self._loop.run_in_executor(None, self._spawn)
            except Exception:
                log.exception("could not start a scoring process; retrying in %.1f s", delay)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), delay)
                delay = min(delay * 2, 10.0)
                continue
            if self._closed.is_set():
                worker.process.kill()
                sock.close()
                await self._loop.run_in_executor(None, worker.process.join, 5.0)
                return
            await self._register(worker, sock)
            return

    # ---------------------------------------------------------------- scoring

    async def score(self, items: Sequence[WorkItem], config: RewardConfig, explain: bool,
                    deadline_s: float) -> Scored:
        """Score `items` within `deadline_s`: results in item order, and their metrics.

        Items not scored within their deadlines come back `timeout`; an item whose reference is invalid
        comes back in `Scored.invalid`, unscored. Raises PoolOverloaded when
        the queue would pass its limit and PoolUnavailable when not ready.
        """
        if not self.ready:
            raise PoolUnavailable(self._failure or "worker pool is not ready")
        if not items:
            return Scored([], ItemStats(), [])
        if self._queue.queued + len(items) > self._max_queued:
            raise PoolOverloaded(self.retry_after_s())
        loop = self._loop  # set by start (`ready` says it ran); asyncio.get_running_loop costs a getpid call
        assert loop is not None
        future: asyncio.Future[None] = loop.create_future()
        job = Job(items, config, explain, partial(self._job_done, future))
        self._queue.add(job)
        job.timer = loop.call_later(deadline_s, self._expire, job, deadline_s)
        if not self._dispatch_soon:
            # Dispatch once the loop has run the other requests ready now: requests that arrived together
            # leave together, coalesced (JobQueue.pop), instead of a message each. A lone request waits
            # for nothing but the end of this loop iteration.
            self._dispatch_soon = True
            loop.call_soon(self._dispatch)
        try:
            await future
        except asyncio.CancelledError:
            # The caller gave up (client gone): drop what is still queued; running chunks are short.
            self._queue.drop(job)
            self._queue.finish(job)
            raise
        return Scored(job.results, job.stats, sorted(job.invalid))

    @staticmethod
    def _job_done(future: asyncio.Future[None], job: Job) -> None:
        if job.timer is not None:
            job.timer.cancel()
            job.timer = None
        if not future.done():
            future.set_result(None)

    def _dispatch(self) -> None:
        """Hand queued chunks to ready workers: every idle worker first, then each a next chunk. Small jobs
        are coalesced into chunks of about an equal share of what is queued per free place, so that
        idle workers all get some."""
        self._dispatch_soon = False
        while len(self._queue):
            worker, free = None, 0
            for w in self._workers:
                if w.ready and len(w.chunks) < _DEPTH:
                    free += _DEPTH - len(w.chunks)
                    if worker is None or len(w.chunks) < len(worker.chunks):
                        worker = w
            if worker is None:
                return
            chunk = self._queue.pop(math.ceil(self._queue.queued / free))
            assert chunk is not None
            self._send(worker, chunk)

    def _send(self, worker: _Worker, chunk: Chunk) -> None:
        assert worker.channel is not None
        self._seq += 1
        chunk.seq = self._seq
        try:
            payload = encode(chunk.message())
        except Exception:
            rest = self._queue.without_unsendable(chunk)
            if rest is None:
                return
            chunk = rest
            chunk.seq = self._seq
            payload = encode(chunk.message())
        chunk.size = len(payload)
        worker.chunks.append(chunk)
        if len(worker.chunks) == 1:
            self._start_clock(worker)
        worker.channel.send(payload)

    def _start_clock(self, worker: _Worker) -> None:
        """The worker's first chunk is due from now, even before the worker starts its first item."""
        assert self._loop is not None
        chunk = worker.chunks[0]
        chunk.due_from = time.monotonic()
        worker.timer = self._loop.call_later(self._item_deadline, self._check_item, worker, chunk.seq)

    def _on_message(self, worker: _Worker, data: memoryview) -> None:
        try:
            message = pickle.loads(data)
        except Exception:
            self._lost(worker, "crash", "error", "scoring process sent garbage")
            return
        kind = message[0]
        if kind in (DONE, PART):
            self._on_results(worker, kind == DONE, *message[1:])
        elif kind == READY:
            worker.ready = True
            self._ready_changed.set()
            self._dispatch()
        elif kind == FAILED:
            self._failure = message[1]
            log.error("scoring process could not start: %s", message[1])
            self._detach(worker)
            if worker.channel is not None:
                worker.channel.close()
            self._ready_changed.set()

    def _on_lost_channel(self, worker: _Worker) -> None:
        if worker in self._workers:  # not one we stopped or gave up on ourselves
            self._lost(worker, "crash", "error", "scoring process died")

    def _on_results(self, worker: _Worker, done: bool, seq: int, offset: int,
                    results: list[dict[str, Any] | None], counts: dict[int, dict[tuple[str, str], int]],
                    work: ItemStats, invalid: dict[int, str]) -> None:
        if not worker.chunks or worker.chunks[0].seq != seq:
            return
        chunk = worker.chunks[0]
        self._queue.record(chunk, offset, results, counts, invalid)
        if not work.empty:
            self._on_scored(work)
        if not done:
            return
        if worker.timer is not None:
            worker.timer.cancel()
            worker.timer = None
        worker.chunks.popleft()
        elapsed = time.monotonic() - chunk.due_from
        self._item_seconds = 0.8 * self._item_seconds + 0.2 * (elapsed / max(1, len(chunk)))
        if worker.chunks:
            self._start_clock(worker)
        self._dispatch()

    # ---------------------------------------------------------------- deadlines and lost workers

    def _check_item(self, worker: _Worker, seq: int) -> None:
        """Timer: kill the worker if its current item has passed the item deadline, else wait for it."""
        assert self._loop is not None
        worker.timer = None
        if not worker.chunks or worker.chunks[0].seq != seq:
            return
        chunk = worker.chunks[0]
        reading = worker.progress.read()
        if reading is not None and reading[0] < seq:  # no item of this chunk started yet (a fresh worker reads 0)
            started, index = chunk.due_from + chunk.size / _SLOWEST_TRANSFER_BYTES_PER_S, -1
        elif reading is None or reading[0] > seq or reading[1] == Progress.IDLE:
            # Moving to the next item right now, or done with this chunk and its results on their way (the
            # worker tags progress with the chunk's number; chunks run in the order sent): look again soon.
            worker.timer = self._loop.call_later(min(0.01, self._item_deadline), self._check_item, worker, seq)
            return
        else:
            _, index, started = reading
        due = started + self._item_deadline
        now = time.monotonic()
        if now < due:
            worker.timer = self._loop.call_later(due - now, self._check_item, worker, seq)
            return
        log.warning("item deadline passed; killing its scoring process",
                    extra={"fields": {"deadline_s": self._item_deadline, "pid": worker.process.pid}})
        self._lost(worker, "item_deadline", "timeout", f"item deadline of {self._item_deadline:g} s passed",
                   index)

    def _lost(self, worker: _Worker, reason: str, status: str, message: str, index: int | None = None) -> None:
        """A worker was killed or died: replace it, settle its current chunk and queue its next ones again."""
        if index is None:
            index = worker.current_index()
        if reason == "crash":
            log.error("scoring process died", extra={"fields": {"pid": worker.process.pid}})
        current = self._evict(worker, reason)
        if current is not None:
            self._queue.settle(current, index, status, message)
        self._dispatch()

    def _evict(self, worker: _Worker, reason: str) -> Chunk | None:
        """Kill and replace `worker`. The chunks it held but had not started go back to the front of the
        queue (nobody's fault); the one it was scoring is returned, for the caller to settle."""
        chunks = list(worker.chunks)
        worker.chunks.clear()
        self._replace(worker, reason)
        for later in reversed(chunks[1:]):
            self._queue.requeue(later)
        return chunks[0] if chunks else None

    def _expire(self, job: Job, deadline_s: float) -> None:
        """Request deadline: stop every worker busy with this job and answer the rest `timeout`."""
        job.timer = None
        if job.done:
            return
        # A worker scoring this job alone is stopped. One whose chunk also holds other requests' items (small
        # jobs coalesced) is left alone: they must not pay for this one; this job's results are dropped,
        # and a stuck item of it is still stopped by the item deadline. So is a chunk of this job waiting
        # behind another job's in a worker.
        for worker in [w for w in self._workers if w.chunks and w.chunks[0].only(job)]:
            self._evict(worker, "request_deadline")
        self._queue.fail_unfinished(job, "timeout", f"request deadline of {deadline_s:g} s passed", retryable=True)
        self._dispatch()
