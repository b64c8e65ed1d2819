"""Small helpers the benchmarks share: peak memory of this process, sizes, machine description."""

from __future__ import annotations

from pathlib import Path

from n2m.provenance import machine_description as machine
from n2m.provenance import today

__all__ = ["machine", "peak_rss_mb", "size_mb", "today"]


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def size_mb(path: str | Path) -> float:
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(p.stat().st_size for p in files) / 1e6, 1)
