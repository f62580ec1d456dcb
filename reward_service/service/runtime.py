"""Process-level tuning for scoring processes (the CLI, the benchmark, the service's workers).

`tune_gc` is for the long-running ones only: the service's process and its workers.

Large graphs make numpy temporaries of ~0.8 MB (16 frames x 6,072 angles). glibc's malloc hands
blocks that size out as fresh mmaps and returns them on free, so every numpy call paid page faults:
the worst-case item ran 4x slower. Raising the mmap and trim thresholds keeps such blocks on the heap.
This is not done on import: a library must not change its host process's allocator behind its back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 64 << 20


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds to 64 MiB. Returns False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, 4 * _THRESHOLD))


GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Move what is alive now out of the collector's reach, and collect far less often.

    The code and the app live as long as the process; unfrozen, every full collection scans them all.
    A 512-item request then allocates tens of thousands of containers that live as long as the request:
    with the default thresholds (700, 10, 10) they are scanned again and again, promoted to the oldest
    generation, and its full collections also scan every cached reference (tens of ms each). Measured
    in the service process, that was 5-10 us of collector time per item, growing as the caches filled;
    with a young-generation threshold of 50,000 most of a request's objects are freed by reference
    counting before any collection sees them. Cyclic garbage is still collected, only later.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
