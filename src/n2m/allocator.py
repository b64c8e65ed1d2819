"""Keep a CPU training process's resident memory close to what its tensors actually use.

glibc serves a large allocation with its own mmap, unmapped when freed, but only until the first such free: it then
raises its mmap threshold to that size (up to 32 MB on 64-bit). From then on a training step's activations, freed
after every backward pass, come from the heap arenas instead, which fragment and are seldom returned to the OS, so
the process's peak RSS grows well past its live tensors. Fixing the threshold keeps large tensors on mmap.

Generation is the opposite case: its key/value cache is reallocated a little larger at every generated token, so
under a low fixed threshold each copy is a fresh mmap, page-faulted in and unmapped again. Decoding the ko-caption
test split with the threshold fixed at 4 MB took ×8.5 the page faults of glibc's own threshold and ran at ×0.59 its
tokens/s; lifted while the model generates (`generating()`), ×1.7 and ×0.92 (`python benchmarks/mmap_threshold.py
--generation RUN_DIR`, benchmarks/results/mmap_threshold.generation.json).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["fix_mmap_threshold", "generating"]

_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
_ENV = "MALLOC_MMAP_THRESHOLD_"  # glibc's own setting: a user who sets it keeps it
_CEILING = 32 << 20  # the highest glibc's dynamic threshold goes on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
_fixed: int | None = None  # what fix_mmap_threshold set in this process (None: glibc's own threshold)


def fix_mmap_threshold(threshold_bytes: int = 4 << 20) -> bool:
    """Serve allocations of `threshold_bytes` or more by mmap for the rest of the process, except while a model
    generates (`generating`). A no-op (False) off glibc, or where the user set `MALLOC_MMAP_THRESHOLD_` themselves.
    Each mmap costs page faults, so a lower threshold trades speed for memory: in 40 batches of KorSTS training
    (e5-small, batch 32, 2 CPU cores), against 4 MB, 2 MB gave peak RSS ×0.93 for ×1.01 the time and 1.5 MB ×0.89
    for ×1.09 (`python benchmarks/mmap_threshold.py --batches 40 --thresholds-mb 1.5 2 4`; on that shared machine,
    times drift by up to 14% between runs).
    `n2m fit --mmap_threshold_mb` sets it (4 by default)."""
    global _fixed
    if not sys.platform.startswith("linux") or _ENV in os.environ or not _mallopt(threshold_bytes):
        return False
    _fixed = threshold_bytes
    return True


@contextmanager
def generating() -> Iterator[None]:
    """While a model generates, a threshold `fix_mmap_threshold` set below glibc's ceiling is lifted to it, then
    put back. Nothing changes in a process that never fixed it (serving, predicting, a user's own setting)."""
    if _fixed is None or _fixed >= _CEILING:
        yield
        return
    _mallopt(_CEILING)
    try:
        yield
    finally:
        _mallopt(_fixed)


def _mallopt(threshold_bytes: int) -> bool:
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold_bytes))
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
