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

The code that runs inside a worker is in worker_process.py.
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
import struct
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from reward_service.scoring import RewardConfig, ScoreResult
from reward_service.service.item_stats import ItemStats, task_label
from reward_service.workers.process import IDLE, PICKLE, WorkItem, worker_main

log = logging.getLogger("reward_service.workers")

_MAX_ATTEMPTS = 3  # a chunk lost this often with no item to blame has its items answered "error"
_DEPTH = 2  # chunks a worker holds: the one it scores and the next
_LEAST = 2  # items in a chunk, but for a batch's last one


class PoolUnavailable(Exception):
    """The pool is starting, closing, or could not start its workers."""


class PoolOverloaded(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many queued items; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


def share_references(items: Sequence[WorkItem]) -> list[WorkItem]:
    """The items with each run of equal consecutive references (a GRPO group's rollouts) sharing one
    object. Pickle then sends it once per chunk instead of once per rollout, and the worker validates
    it once: about 5 us less per item, on both sides, for a graph reference."""
    out: list[WorkItem] = []
    previous: Any = None
    for completion, reference, num_tokens in items:
        if reference is not previous and reference == previous:
            reference = previous
        previous = reference
        out.append((completion, reference, num_tokens))
    return out


def chunk_bounds(n: int, workers: int, most: int) -> list[tuple[int, int]]:
    """Split n items into chunks that shrink as the batch runs out ("guided" scheduling).

    Big chunks first cost few round trips; small ones last let every worker finish at about the same
    time, so a batch's latency is not set by the one worker that drew the last big chunk. `most`
    also bounds the work redone when a worker is lost.
    """
    bounds = []
    start = 0
    while start < n:
        size = min(most, max(_LEAST, math.ceil((n - start) / (2 * workers))))
        bounds.append((start, min(n, start + size)))
        start += size
    return bounds


class _Job:
    """One `score` call: the results in item order, filled as chunks come back."""

    __slots__ = ("config_dict", "config_id", "done", "explain", "future", "items", "remaining", "results", "stats",
                 "timer")

    def __init__(self, items: Sequence[WorkItem], config: RewardConfig, explain: bool,
                 future: asyncio.Future[None], stats: ItemStats | None) -> None:
        self.items = items
        self.stats = stats
        self.config_id = config.id
        self.config_dict = config.to_dict()
        self.explain = explain
        self.future = future
        self.results: list[dict[str, Any] | None] = [None] * len(items)
        self.remaining = len(items)
        self.done = False
        self.timer: asyncio.TimerHandle | None = None


class _Chunk:
    __slots__ = ("attempts", "due_from", "job", "positions", "reported", "seq")

    def __init__(self, job: _Job, positions: list[int], attempts: int = 0) -> None:
        self.job = job
        self.positions = positions
        self.attempts = attempts
        self.reported = 0  # results received so far, for the first `reported` positions
        self.seq = 0  # set when sent: the worker tags its progress and results with it
        self.due_from = 0.0  # when it became its worker's current chunk


class _Channel(asyncio.Protocol):
    """The service's end of a worker's socket: messages framed as multiprocessing.Connection frames them
    (so the worker uses a plain blocking Connection), read and written by an asyncio transport, so that
    neither a big chunk nor a slow reader ever blocks the event loop."""

    def __init__(self, on_message: Callable[[memoryview], None], on_lost: Callable[[], None]) -> None:
        self._on_message = on_message
        self._on_lost = on_lost
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while not self.closed and len(buffer) >= 4:
            (size,) = struct.unpack_from("!i", buffer)
            start = 4
            if size == -1:  # a frame over 2 GiB: an 8-byte size follows
                if len(buffer) < 12:
                    return
                (size,) = struct.unpack_from("!Q", buffer, 4)
                start = 12
            end = start + size
            if len(buffer) < end:
                return
            with memoryview(buffer) as view, view[start:end] as message:
                self._on_message(message)  # pickle reads the view: no copy of the message
            del buffer[:end]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self._on_lost()

    def send(self, payload: bytes) -> None:
        if self.closed or self.transport is None:
            return  # the worker is gone: connection_lost settles its chunks
        size = len(payload)
        header = struct.pack("!i", size) if size <= 0x7FFFFFFF else struct.pack("!iQ", -1, size)
        self.transport.writelines((header, payload))

    def close(self) -> None:
        """Stop delivering messages and drop the socket, unsent data included."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class _Worker:
    __slots__ = ("channel", "chunks", "process", "progress", "ready", "timer")

    def __init__(self, process: Any, progress: Any) -> None:
        self.process = process
        self.progress = progress  # [seq, index, start] of the item being scored; see worker_process.py
        self.channel: _Channel | None = None
        self.ready = False
        self.chunks: deque[_Chunk] = deque()  # sent, not finished; the first is being scored
        self.timer: asyncio.TimerHandle | None = None


class WorkerPool:
    """Scoring processes fed chunks of items from one FIFO queue, on the service's event loop."""

    def __init__(
        self,
        *,
        workers: int,
        scorer: str = "reward_service.scoring:score",
        item_deadline_s: float = 2.0,
        chunk_items: int = 64,
        max_queued_items: int = 16384,
        on_restart: Callable[[str], None] = lambda _: None,
    ) -> None:
        self._size = workers
        self._scorer = scorer
        self._item_deadline = item_deadline_s
        self._chunk_items = chunk_items
        self._max_queued = max_queued_items
        self._on_restart = on_restart
        self._ctx = multiprocessing.get_context("forkserver")
        self._workers: list[_Worker] = []
        self._queue: deque[_Chunk] = deque()
        self._queued = 0
        self._jobs: set[_Job] = set()
        self._seq = 0
        self._item_seconds = 0.001  # moving average of one item's cost, for Retry-After
        self._started = False
        self._failure: str | None = None
        self._ready_changed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._respawns: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()

    # ---------------------------------------------------------------- state

    @property
    def ready(self) -> bool:
        return self._started and not self._closed.is_set()

    @property
    def queued_items(self) -> int:
        return self._queued

    @property
    def inflight_items(self) -> int:
        return sum(len(c.positions) - c.reported for w in self._workers for c in w.chunks)

    @property
    def ready_workers(self) -> int:
        return sum(1 for w in self._workers if w.ready)

    def retry_after_s(self) -> int:
        """Seconds until the queue has drained, by the recent cost of an item."""
        wait = self._queued * self._item_seconds / max(1, self._size)
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
        for job in list(self._jobs):
            self._fail_unfinished(job, "error", "service shutting down", retryable=True)
        self._queue.clear()
        self._queued = 0
        workers, self._workers = self._workers, []
        for w in workers:
            if w.channel is not None:
                w.channel.send(pickle.dumps(None))
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
        progress = self._ctx.RawArray("d", 3)  # zero-filled: chunk 0, which no chunk is (they count from 1)
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
        channel = _Channel(lambda message: self._on_message(worker, message), lambda: self._on_lost_channel(worker))
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
                    deadline_s: float, stats: ItemStats | None = None) -> list[dict[str, Any]]:
        """Score `items`; results in item order, `ScoreResult.to_dict()` shape.

        Items not scored within their deadlines come back `timeout`; an item whose reference is invalid
        comes back `{"status": INVALID_REFERENCE, "error": message}`, unscored. The metrics of the items
        are added to `stats`. Raises PoolOverloaded when the queue would pass its limit and
        PoolUnavailable when not ready.
        """
        if not self.ready:
            raise PoolUnavailable(self._failure or "worker pool is not ready")
        if not items:
            return []
        if self._queued + len(items) > self._max_queued:
            raise PoolOverloaded(self.retry_after_s())
        loop = asyncio.get_running_loop()
        job = _Job(items, config, explain, loop.create_future(), stats)
        self._jobs.add(job)
        for start, stop in chunk_bounds(len(items), self._size, self._chunk_items):
            self._queue.append(_Chunk(job, list(range(start, stop))))
        self._queued += len(items)
        job.timer = loop.call_later(deadline_s, self._expire, job, deadline_s)
        self._dispatch()
        try:
            await job.future
        except asyncio.CancelledError:
            # The caller gave up (client gone): drop what is still queued; running chunks are short.
            self._finish(job)
            self._drop_queued(job)
            raise
        return job.results  # type: ignore[return-value]  # every slot is filled when the future is done

    def _dispatch(self) -> None:
        """Hand queued chunks to ready workers: every idle worker first, then each a next chunk."""
        while self._queue:
            worker = None
            for w in self._workers:
                if w.ready and len(w.chunks) < _DEPTH and (worker is None or len(w.chunks) < len(worker.chunks)):
                    worker = w
            if worker is None:
                return
            chunk = self._queue.popleft()  # never of a finished job: finishing early drops them
            self._queued -= len(chunk.positions)
            self._send(worker, chunk)

    def _send(self, worker: _Worker, chunk: _Chunk) -> None:
        assert worker.channel is not None
        self._seq += 1
        chunk.seq = self._seq
        job = chunk.job
        items = [job.items[p] for p in chunk.positions]
        worker.chunks.append(chunk)
        if len(worker.chunks) == 1:
            self._start_clock(worker)
        worker.channel.send(pickle.dumps((chunk.seq, job.config_id, job.config_dict, job.explain, items), PICKLE))

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
        if kind == "done" or kind == "part":
            self._on_results(worker, kind == "done", *message[1:])
        elif kind == "ready":
            worker.ready = True
            self._ready_changed.set()
            self._dispatch()
        elif kind == "failed":
            self._failure = message[1]
            log.error("scoring process could not start: %s", message[1])
            self._detach(worker)
            if worker.channel is not None:
                worker.channel.close()
            self._ready_changed.set()

    def _on_lost_channel(self, worker: _Worker) -> None:
        if worker in self._workers:  # not one we stopped or gave up on ourselves
            self._lost(worker, "crash", "error", "scoring process died")

    def _on_results(self, worker: _Worker, done: bool, seq: int, offset: int, results: list[dict[str, Any]],
                    stats: ItemStats) -> None:
        if not worker.chunks or worker.chunks[0].seq != seq:
            return
        chunk = worker.chunks[0]
        job = chunk.job
        if not job.done:
            for position, result in zip(chunk.positions[offset:offset + len(results)], results, strict=True):
                job.results[position] = result
            job.remaining -= len(results)
            if job.stats is not None:
                job.stats.merge(stats)
        chunk.reported = offset + len(results)
        if not done:
            return
        if worker.timer is not None:
            worker.timer.cancel()
            worker.timer = None
        worker.chunks.popleft()
        elapsed = time.monotonic() - chunk.due_from
        self._item_seconds = 0.8 * self._item_seconds + 0.2 * (elapsed / max(1, len(chunk.positions)))
        if worker.chunks:
            self._start_clock(worker)
        if not job.done and job.remaining == 0:
            self._finish(job)
        self._dispatch()

    # ---------------------------------------------------------------- deadlines and lost workers

    def _check_item(self, worker: _Worker, seq: int) -> None:
        """Timer: kill the worker if its current item has passed the item deadline, else wait for it."""
        assert self._loop is not None
        worker.timer = None
        if not worker.chunks or worker.chunks[0].seq != seq:
            return
        chunk = worker.chunks[0]
        progress = worker.progress
        started = progress[2]
        running, index = progress[0], int(progress[1])
        if running < seq:  # no item of this chunk started yet (a fresh worker's progress is all zero)
            started, index = chunk.due_from, -1
        elif progress[2] != started or started == 0.0 or running > seq or index == IDLE:
            # Moving to the next item right now, or done with this chunk and its results on their way (the
            # worker tags progress with the chunk's number; chunks run in the order sent): look again soon.
            worker.timer = self._loop.call_later(min(0.01, self._item_deadline), self._check_item, worker, seq)
            return
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
            progress = worker.progress
            index = int(progress[1]) if worker.chunks and progress[0] == worker.chunks[0].seq else -1
        if reason == "crash":
            log.error("scoring process died", extra={"fields": {"pid": worker.process.pid}})
        current = self._evict(worker, reason)
        if current is not None and not current.job.done:
            self._settle(current, index, status, message)
        self._dispatch()

    def _evict(self, worker: _Worker, reason: str) -> _Chunk | None:
        """Kill and replace `worker`. The chunks it held but had not started go back to the front of the
        queue (nobody's fault); the one it was scoring is returned, for the caller to settle."""
        chunks = list(worker.chunks)
        worker.chunks.clear()
        self._replace(worker, reason)
        for later in reversed(chunks[1:]):
            self._requeue(later)
        return chunks[0] if chunks else None

    def _requeue(self, chunk: _Chunk) -> None:
        """Queue a chunk that holds no reported item at the front: its items were dispatched once already."""
        if chunk.positions and not chunk.job.done:
            self._queue.appendleft(chunk)
            self._queued += len(chunk.positions)

    def _settle(self, chunk: _Chunk, index: int, status: str, message: str) -> None:
        """Blame the item that was running (if any), and queue the chunk's other items again."""
        job = chunk.job
        index = index - chunk.reported if index >= 0 else -1  # negative: no item had started
        positions = chunk.positions[chunk.reported:]
        attempts = chunk.attempts
        if 0 <= index < len(positions):
            self._unscored(job, [positions[index]], status, message)
            positions = positions[:index] + positions[index + 1:]
        else:  # no item to blame: the chunk itself counts a lost attempt
            attempts += 1
        if positions and attempts >= _MAX_ATTEMPTS:
            self._unscored(job, positions, "error", "scoring process lost too often", retryable=True)
        else:
            self._requeue(_Chunk(job, positions, attempts))
        if job.remaining == 0:
            self._finish(job)

    def _expire(self, job: _Job, deadline_s: float) -> None:
        """Request deadline: stop every worker busy with this job and answer the rest `timeout`."""
        job.timer = None
        if job.done:
            return
        for worker in [w for w in self._workers if w.chunks and w.chunks[0].job is job]:
            self._evict(worker, "request_deadline")
        # A chunk of this job waiting behind another job's in a worker is scored and its results dropped.
        self._drop_queued(job)
        self._fail_unfinished(job, "timeout", f"request deadline of {deadline_s:g} s passed", retryable=True)
        self._dispatch()

    def _drop_queued(self, job: _Job) -> None:
        kept = deque(c for c in self._queue if c.job is not job)
        self._queued = sum(len(c.positions) for c in kept)
        self._queue = kept

    def _fail_unfinished(self, job: _Job, status: str, message: str, *, retryable: bool = False) -> None:
        self._unscored(job, [p for p, r in enumerate(job.results) if r is None], status, message,
                       retryable=retryable)
        self._finish(job)

    def _unscored(self, job: _Job, positions: list[int], status: str, message: str, *,
                  retryable: bool = False) -> None:
        for position in positions:
            result = ScoreResult.unscored(status, message, retryable=retryable).to_dict()
            job.results[position] = result
            if job.stats is not None:
                job.stats.add(task_label(job.items[position][1]), result)
        job.remaining -= len(positions)

    def _finish(self, job: _Job) -> None:
        job.done = True
        self._jobs.discard(job)
        if job.timer is not None:
            job.timer.cancel()
            job.timer = None
        if not job.future.done():
            job.future.set_result(None)
