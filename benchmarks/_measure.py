"""Small helpers the benchmarks share: peak memory of this process, sizes, machine description."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L

from n2m.provenance import machine_description as machine
from n2m.provenance import today

__all__ = ["TrainTimer", "machine", "peak_rss_mb", "size_mb", "today"]


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


class TrainTimer(L.Callback):
    """Seconds a Lightning run spends training, its validation subtracted, written to `path` when training
    ends: what the HF `Trainer` runs beside it time (`trainer.train()` without evaluation), so training
    throughput compares like with like. Pass it as `--trainer.callbacks+ '{"class_path": "_measure.TrainTimer",
    "init_args": {"path": ...}}'` with benchmarks/ on `sys.path`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.validating = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.val_start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.validating += time.perf_counter() - self.val_start

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        total = time.perf_counter() - self.start
        Path(self.path).write_text(json.dumps({"train_s": total - self.validating, "validation_s": self.validating}))


def train_timer_arg(path: str | Path) -> str:
    """The `--trainer.callbacks+` value that adds a `TrainTimer` writing to `path`."""
    return json.dumps({"class_path": "_measure.TrainTimer", "init_args": {"path": str(path)}})
