"""Small helpers the benchmarks share: peak memory of this process, sizes, machine description."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L

from n2m.provenance import machine_description as machine
from n2m.provenance import today

__all__ = [
    "ACCELERATOR_ARGS", "TrainTimer", "kept_or_run", "machine", "peak_gpu_mb", "peak_rss_mb", "recipe_settings",
    "repo_path", "run_child", "run_or_resume", "size_mb", "today", "write_results",
]  # fmt: skip

# `n2m fit` arguments for where a benchmark trains: the CPU in fp32, or one GPU in bf16 autocast (what the HF
# side's `bf16=True` does)
ACCELERATOR_ARGS: dict[str, list[str]] = {
    "cpu": [],
    "gpu": ["--trainer.accelerator", "gpu", "--trainer.devices", "1", "--trainer.precision", "bf16-mixed"],
}


def recipe_settings(recipe: Path, epochs: int | None = None) -> dict[str, Any]:
    """What a benchmark gives the other tool, read from an n2m recipe (n2m's defaults where it says nothing), so
    both sides train with the same settings: epochs (or `epochs`), batch size, learning rate, schedule and
    warm-up, weight decay, gradient clipping, max_length, pooling, prefix, score range, seed."""
    import yaml

    from n2m.core.task import Optimization

    config = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    model, data, trainer = config["model"], config["data"], config.get("trainer", {})
    opt = {**vars(Optimization()), **model.get("optimization", {})}
    return {
        "epochs": epochs or trainer.get("max_epochs", 1),
        "batch_size": data["batch_size"],
        "lr": opt["lr"],
        "warmup_ratio": opt["warmup_ratio"],
        "schedule": opt["schedule"],
        "weight_decay": opt["weight_decay"],
        "max_grad_norm": trainer.get("gradient_clip_val"),  # None: Lightning clips nothing
        "max_length": data["max_length"],
        "pooling": model.get("pooling", "mean"),
        "text_prefix": data.get("text_prefix", ""),
        "score_range": data.get("score_range"),
        "seed": config.get("seed_everything", 0),
        "trim_vocab": data.get("trim_vocab", False),
    }


def val_by_epoch(root: Path, metrics: Sequence[str]) -> dict[str, list[float]]:
    """Each `val/<metric>` after each epoch of the n2m run in `root` (all its logged versions, in order)."""
    rows = []
    for path in sorted(root.glob("logs/version_*/metrics.csv")):
        with path.open(encoding="utf-8") as f:
            rows += [r for r in csv.DictReader(f) if any(r.get(f"val/{m}") for m in metrics)]
    return {m: [round(float(r[f"val/{m}"]), 4) for r in rows if r.get(f"val/{m}")] for m in metrics}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def peak_gpu_mb() -> float | None:
    """This process's peak GPU memory held by tensors (`torch.cuda.max_memory_allocated`), in MB; None without
    a GPU."""
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None


def size_mb(path: str | Path) -> float:
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(p.stat().st_size for p in files) / 1e6, 1)


class TrainTimer(L.Callback):
    """Seconds a Lightning run spends training, its validation subtracted (not the sanity check's: that runs
    before training starts), and the peak RSS so far, written to `path` when training ends: what the HF
    `Trainer` runs beside it time (`trainer.train()` without evaluation), so training throughput compares like
    with like. Pass it as `--trainer.callbacks+ '{"class_path": "_measure.TrainTimer", "init_args": {"path":
    ...}}'` with benchmarks/ on `sys.path`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.validating = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.val_start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # the sanity check runs before `on_train_start`: subtracting it would count time never measured
        if not trainer.sanity_checking:
            self.validating += time.perf_counter() - self.val_start

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        total = time.perf_counter() - self.start
        times = {"train_s": total - self.validating, "validation_s": self.validating}
        # the peak so far: whether a run's peak RSS is set by training or by what follows it (test, export)
        Path(self.path).write_text(json.dumps({**times, "peak_rss_mb_after_training": peak_rss_mb()}))


def train_timer_arg(path: str | Path) -> str:
    """The `--trainer.callbacks+` value that adds a `TrainTimer` writing to `path`."""
    return json.dumps({"class_path": "_measure.TrainTimer", "init_args": {"path": str(path)}})


def run_child(script: str, system: str, config: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `script --child SYSTEM --config-json CONFIG` in a fresh interpreter (with `env` added to this one's),
    so the system's peak RSS is its own, and return the JSON object it prints last."""
    cmd = [sys.executable, script, "--child", system, "--config-json", json.dumps(config)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{system} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def kept_or_run(done: Path, resume: bool, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`run()`'s result, written to `done`; with `resume`, a result already there is read back instead, so a
    crash or an ended session costs only the parts not yet finished."""
    if resume and done.is_file():
        print(f"kept from {done}", flush=True)
        return json.loads(done.read_text(encoding="utf-8"))
    result = run()
    done.write_text(json.dumps(result) + "\n", encoding="utf-8")
    return result


def result_file(out: str | Path, system: str) -> Path:
    """Where `run_or_resume` keeps a finished side's result."""
    return Path(out, f"{system}.result.json")


def run_or_resume(script: str, system: str, config: dict[str, Any], out: str | Path, resume: bool) -> dict[str, Any]:
    """`run_child`, keeping each finished side in `result_file(out, system)` (see `kept_or_run`)."""
    print(f"{system} …", flush=True)
    return kept_or_run(result_file(out, system), resume, lambda: run_child(script, system, config))


def keep_other_sides(
    kept_file: Path, results: dict[str, Any], only: str, sides: Sequence[str], seeds: list[int], own_seed: int
) -> dict[str, Any]:
    """`--only SIDE`: every other side in `results` as `kept_file` has it, from a run of the same mode and seeds,
    and `results["kept_from_earlier_run"]` saying which run each kept side comes from; returns the kept file."""
    kept = json.loads(kept_file.read_text(encoding="utf-8"))
    if (kept["mode"], kept.get("seeds", [own_seed])) != (results["mode"], seeds):
        raise SystemExit(f"--only: {kept_file.name} holds a {kept['mode']} run over seeds {kept.get('seeds')}")
    others = [side for side in sides if side in kept and side != only]
    results.update({side: kept[side] for side in others})
    results["kept_from_earlier_run"] = kept_origins(kept, others)
    return kept


def kept_origins(kept: dict[str, Any], sides: list[str]) -> list[dict[str, Any]]:
    """Which run each kept side comes from, as `[{"date", "machine", "sides"}]`: a side the kept file had itself
    kept from an earlier run keeps that run's date and machine."""
    earlier = kept.get("kept_from_earlier_run") or []
    origins: dict[tuple[str, str], list[str]] = {}
    for side in sides:
        run = next((e for e in earlier if side in e["sides"]), kept)
        origins.setdefault((run["date"], run["machine"]), []).append(side)
    return [{"date": date, "machine": where, "sides": s} for (date, where), s in origins.items()]


def repo_path(path: str | Path) -> str:
    """A path as a results file records it: relative to the repository when inside it, else as given."""
    root = Path(__file__).resolve().parents[1]
    resolved = Path(path).resolve()
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(path)


def write_results(target: Path, name: str, results: dict[str, Any], markdown: str) -> None:
    """`<target>/<name>.json` and its Markdown table `<name>.md`."""
    target.mkdir(parents=True, exist_ok=True)
    (target / f"{name}.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (target / f"{name}.md").write_text(markdown, encoding="utf-8")


def n2m_command(*args: str) -> None:
    """`python -m n2m.cli ARGS` in a child process from the repository root, benchmarks/ importable (so a recipe
    run can take `_measure.TrainTimer` as a callback)."""
    root = Path(__file__).resolve().parents[1]
    path = os.pathsep.join(filter(None, [str(root / "benchmarks"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    subprocess.run([sys.executable, "-m", "n2m.cli", *args], cwd=root, check=True, env=env)
