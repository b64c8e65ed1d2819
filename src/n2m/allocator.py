"""Keep a CPU training process's resident memory close to what its tensors actually use.

glibc serves a large allocation with its own mmap, unmapped when freed, but only until the first such free: it then
raises its mmap threshold to that size (up to 32 MB on 64-bit). From then on a training step's activations, freed
after every backward pass, come from the heap arenas instead, which fragment and are seldom returned to the OS, so
the process's peak RSS grows well past its live tensors. Fixing the threshold keeps large tensors on mmap.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["fix_mmap_threshold"]

_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
_ENV = "MALLOC_MMAP_THRESHOLD_"  # glibc's own setting: a user who sets it keeps it


def fix_mmap_threshold(threshold_bytes: int = 4 << 20) -> bool:
    """Serve allocations of `threshold_bytes` or more by mmap for the rest of the process. A no-op (False) off
    glibc, or where the user set `MALLOC_MMAP_THRESHOLD_` themselves. Each mmap costs page faults, so a lower
    threshold trades speed for memory: in 40 batches of KorSTS training (e5-small, batch 32, 2 CPU cores), against
    4 MB, 2 MB gave peak RSS ×0.93 for ×1.01 the time and 1.5 MB ×0.89 for ×1.09 (`python benchmarks/mmap_threshold.py
    --batches 40 --thresholds-mb 1.5 2 4`; on that shared machine, times drift by up to 14% between runs).
    `n2m fit --mmap_threshold_mb` sets it (4 by default)."""
    if not sys.platform.startswith("linux") or _ENV in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold_bytes))
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
