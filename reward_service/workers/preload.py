"""Imported once by the forkserver that forks the scoring workers (see workers.py).

It imports the scoring core and scores a few items, so that every worker forked afterwards starts
with the compiled graph kernels (numba, ~0.5 s to load on first use) and warm caches in memory.
Without it each new worker, replacements included, would spend its first item's deadline warming up.
"""

from __future__ import annotations

import logging

from reward_service.scoring import RewardConfig, score
from reward_service.service.runtime import tune_allocator, tune_gc

_REFERENCE = {"task_type": "multiple_choice", "answer": "B",
              "graph": {"frames": {"0": {"a": [0.0, 0.0], "b": [3.0, 0.0], "c": [0.0, 4.0]}}}}
_COMPLETION = ('<think><graph>{"frames": {"0": {"a": [0, 0], "b": [0, 3], "c": [-4, 0]}}}</graph></think>'
               "<answer>B</answer>")


def warm_up() -> None:
    for mode in ("unsigned", "signed_planar"):
        score(_COMPLETION, _REFERENCE, RewardConfig.build({"graph": {"angle_mode": mode}}), num_tokens=400)


tune_allocator()  # big graphs' numpy temporaries stay on the heap (runtime.py); inherited by every fork
try:
    warm_up()
except Exception:  # a cold worker is slower on its first item, never wrong: do not stop the forkserver
    logging.getLogger("reward_service.workers").warning("scoring warm-up failed", exc_info=True)

# Everything imported so far lives as long as the workers: move it out of the collector's reach.
# A full collection in a worker then scans a chunk's objects, not all of numpy, scipy and numba
# (~90 ms pauses otherwise, straight into a request's latency); and forked workers keep sharing
# these pages instead of copying them when the collector touches their headers. Collections are
# also made rarer (runtime.tune_gc): a chunk's objects are mostly freed before one sees them.
tune_gc()
