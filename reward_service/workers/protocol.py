"""What the pool and a worker say to each other: the messages on the socket, and the shared progress slot.

Messages are pickled tuples (`PICKLE` protocol) in multiprocessing.Connection's framing (channel.py):

* pool -> worker: `(seq, config_id, config_dict, explain, items, segments)` to score a chunk (segments:
  the lengths of its runs of items from one request), or `None` to stop;
* worker -> pool: `("ready",)`, `("failed", reason)`, and for each chunk zero or more
  `("part", seq, offset, results, counts, work, invalid)` (when the chunk is slow, and in a chunk of
  coalesced requests as its requests are done: process.py) then one `("done", ...)` alike: the results
  of the chunk's items from `offset` on (None for an item whose reference is invalid, with the reason
  in `invalid`, by index in the chunk: it is the client's error, answered 422, never a result), their
  counts by (task, status) by segment index (each request's are its own: a request answered 422
  counts no item), and one `ItemStats` of the scoring work they took (durations, rewards, components,
  notes), which the service adds at once. Histograms per request cost the service an unpickled object
  and seven merges per one-item request: 120-126 us of its CPU per one-item request against 109-116
  without (64 concurrent one-item requests fed to uvicorn's protocol in-process, real workers,
  2026-11-30).

`share_references` is the one place that makes equal references one object: pickle then sends a
GRPO group's reference once per chunk, the worker validates it once (it keys by object), and the
service serialises it once for the cache key. It runs on each request's items (`RewardService.score`)
and again on a chunk of coalesced requests (`Chunk.message`): one-rollout requests of one group.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

WorkItem = tuple[str, Any, "int | None"]  # completion, reference (JSON object, validated by the worker), num_tokens

PICKLE = pickle.HIGHEST_PROTOCOL
READY, FAILED, PART, DONE = "ready", "failed", "part", "done"


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


def encode(message: Any) -> bytes:
    return pickle.dumps(message, PICKLE)


class Progress:
    """The worker's current item, in a three-slot shared array of doubles: the chunk's number, the
    item's index in it, and its start time (monotonic clock, the same in every process).

    The worker writes (`begin`, `idle`); the pool reads (`read`) from its deadline timers. A write is
    not atomic, so the start time is zeroed first and written last, and a reader trusts the other two
    only when it saw the same non-zero start time before and after reading them.
    """

    IDLE = -1  # index written after a chunk's last item

    __slots__ = ("_slots",)

    def __init__(self, context: Any) -> None:
        self._slots = context.RawArray("d", 3)  # zero-filled: chunk 0, which no chunk is (they count from 1)

    def begin(self, seq: int, index: int, started: float) -> None:
        slots = self._slots
        slots[2] = 0.0
        slots[0] = seq
        slots[1] = index
        slots[2] = started

    def idle(self) -> None:
        self._slots[1] = self.IDLE

    def read(self) -> tuple[int, int, float] | None:
        """(chunk, index, start time) of the item being scored, or None while the worker is between
        writes (read again soon). A fresh worker reads as chunk 0."""
        slots = self._slots
        started = slots[2]
        seq, index = int(slots[0]), int(slots[1])
        if slots[2] != started or (started == 0.0 and seq != 0):
            return None
        return seq, index, started
