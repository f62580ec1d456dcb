"""The code that runs inside a scoring worker process (the pool that drives it is pool.py).

A worker loads the scorer, says "ready", then scores the chunks it is sent, one item after another,
writing each item's index and start time to a shared array the service watches for deadlines. A slow
chunk sends its results in parts, so a kill later in the chunk never loses the items already done.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from reward_service.scoring import InvalidReference, RewardConfig, ScoreResult, validate_reference
from reward_service.service.item_stats import ItemStats, task_label
from reward_service.workers.protocol import DONE, FAILED, PART, READY, Progress, WorkItem, encode

Scorer = Callable[[str, Any, RewardConfig, "int | None", bool], ScoreResult]

_FLUSH_S = 0.05  # a chunk running longer than this sends the results it has so far
# A chunk of coalesced requests sends the results of its requests done so far at the end of a request
# once this long has passed since its last message (`_score_chunk`).
_ANSWER_S = 0.0003


def load_scorer(path: str) -> Scorer:
    """`"package.module:function"` -> the function."""
    module_name, _, attr = path.partition(":")
    scorer: Scorer = getattr(importlib.import_module(module_name), attr or "score")
    return scorer


NICENESS = 5  # the service's loop keeps three quarters of a core it shares with a worker (weights 1024 : 335)


def yield_to_the_service() -> bool:
    """Run this process under SCHED_BATCH (Linux; unprivileged) and NICENESS: a batch process is never
    scheduled in at once on waking, it waits for the tick; niceness weighs the CPU share it gets beside
    the service process on one core. Returns whether the policy was set.

    The service process is one thread that every request goes through. When it sent a worker a chunk on a
    busy machine, the worker woke and preempted it on the spot, and the service stood still for about half
    a millisecond per chunk sent (550 us of wall time for 19 us of CPU in `Channel.send`, one-item requests
    from wrk, 64 connections, 2 cores, 2026-11-30; 28 us under SCHED_BATCH). Scoring is throughput work:
    a few milliseconds later on a chunk cost nothing, a stalled event loop costs every client. Niceness 5
    on top: one-item requests per second +2 to +5% in three alternating runs of 3 to 5 rounds."""
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    batch = getattr(os, "SCHED_BATCH", None)
    if batch is None:
        return False
    try:
        os.sched_setscheduler(0, batch, os.sched_param(0))
    except OSError:  # a seccomp profile that forbids it: the default policy still works
        return False
    return True


def _exit_when_orphaned() -> None:
    """A worker whose service died must not live on (stuck in a loop, say): poll the parent pid."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def _score_chunk(conn: Connection, seq: int, scorer: Scorer, items: Sequence[WorkItem], segments: Sequence[int],
                 config: RewardConfig, explain: bool, progress: Progress) -> None:
    """Score a chunk and send its results: all at the end, or in parts. A part goes out when the chunk
    has run `_FLUSH_S` since its last message, so that a deadline or a kill later in the chunk never
    loses the items already scored; and, in a chunk of coalesced requests (several segments: a
    segment is a run of items of one request), at the end of a request once `_ANSWER_S` has passed
    since the last message, so that its requests are answered as they are done, not when the chunk's
    last one is.

    That is what keeps one-item traffic flowing. Coalesced chunks hold from 1 to about 60 one-item
    requests (mean 10: wrk, 64 connections, 2 cores, 2026-11-30); answered at the chunk's end, the
    requests of a big one came back together up to 5 ms late, while the service, with no request left
    to read, and often the other worker, with no chunk left to take, waited: the cores stood 14-16%
    idle. Answered every 0.3 ms they stand 7-8% idle (a part every request, at no interval, cost more
    CPU in the service than it gained). Item counts are kept by segment (each request's are its own),
    the histograms of the work done per message (protocol.py)."""
    results: list[dict[str, Any] | None] = []
    invalid: dict[int, str] = {}  # index in the chunk -> why its reference is invalid
    segment_of = [segment for segment, length in enumerate(segments) for _ in range(length)]
    counts: dict[int, dict[tuple[str, str], int]] = {}  # segment -> (task, status) -> items
    work = ItemStats()
    clock = time.monotonic
    offset = 0
    flush_at = clock() + _FLUSH_S
    answer_at = clock() + _ANSWER_S
    # The rollouts of a group arrive sharing one reference object (see protocol.share_references): validate
    # it once for them all, and hand the scorer the validated Reference (or the InvalidReference).
    validated: dict[int, Any] = {}
    for index, (completion, reference, num_tokens) in enumerate(items):
        started = clock()
        progress.begin(seq, index, started)
        ref = validated.get(id(reference))
        if ref is None:
            try:
                ref = validate_reference(reference)
            except InvalidReference as exc:
                ref = exc
            validated[id(reference)] = ref
        if isinstance(ref, InvalidReference):
            result = None  # not scored, not counted: the request is answered 422
            invalid[index] = str(ref)
            now = clock()
        else:
            try:
                result = scorer(completion, ref, config, num_tokens, explain).to_dict()
            except Exception as exc:  # `score` never raises for a completion; a bug must not lose the chunk
                result = ScoreResult.unscored("error", f"{type(exc).__name__}: {exc}").to_dict()
            now = clock()
            task = task_label(reference)
            key = (task, result["status"])
            segment_counts = counts.setdefault(segment_of[index], {})
            segment_counts[key] = segment_counts.get(key, 0) + 1
            work.describe(task, result, now - started)
        results.append(result)
        # A request ends where the next item is another segment's (a batch's chunk is one segment).
        if index + 1 < len(items) and (now >= flush_at or (now >= answer_at
                                                           and segment_of[index + 1] != segment_of[index])):
            conn.send_bytes(encode((PART, seq, offset, results, counts, work, invalid)))
            offset += len(results)
            results, counts, work, invalid = [], {}, ItemStats(), {}
            flush_at = now + _FLUSH_S
            answer_at = now + _ANSWER_S
    progress.idle()
    conn.send_bytes(encode((DONE, seq, offset, results, counts, work, invalid)))


def worker_main(conn: Connection, progress: Progress, scorer_path: str) -> None:
    # ^C in a terminal reaches the whole process group; the service drains on it and still needs its
    # workers, so SIGINT is ignored. A SIGTERM (a group-wide stop, or multiprocessing's cleanup at
    # exit) ends an idle worker at once and a busy one after its chunk, whose results are then sent.
    busy = False
    stopping = False

    def on_term(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        if not busy:
            os._exit(0)
        stopping = True

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_term)
    yield_to_the_service()
    _exit_when_orphaned()
    try:
        try:
            scorer = load_scorer(scorer_path)
        except Exception as exc:
            conn.send_bytes(encode((FAILED, f"cannot load scorer {scorer_path!r}: {exc!r}")))
            return
        configs: dict[str, RewardConfig] = {}
        conn.send_bytes(encode((READY,)))
        while True:
            task = pickle.loads(conn.recv_bytes())
            if task is None:
                return
            seq, config_id, config_dict, explain, items, segments = task
            config = configs.get(config_id)
            if config is None:
                if len(configs) > 64:
                    configs.clear()
                config = configs[config_id] = RewardConfig.build(config_dict)
            busy = True
            _score_chunk(conn, seq, scorer, items, segments, config, explain, progress)
            busy = False
            if stopping:
                return
    except (EOFError, OSError):  # the service closed our pipe (it stopped, or gave up on us): just go
        return
