"""A suite file names recipes and the metric each task is known by; `run_task` trains and tests one of them as
`n2m fit` does, in a process of its own, and says what came of it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from n2m.errors import ConfigError

SUITES_DIR = Path("recipes/suites")
DEFAULT_SUITE = "korean"
BENCH_FILE = "bench.json"  # in a task's run folder: what it was run with (recipe, arguments), for --resume
LOG_FILE = "fit.log"
# CI's smallest run of a recipe that still trains, validates, tests and reports: 2 batches of each.
QUICK = [
    "trainer.max_epochs=1",
    "trainer.max_steps=-1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.val_check_interval=1.0",  # a recipe's `val_check_interval: 100` would exceed the 2 batches
    "trainer.num_sanity_val_steps=0",
    "data.batch_size=8",
    "data.max_length=32",
]


@dataclass(frozen=True)
class Task:
    name: str
    recipe: Path
    metric: str | None = None  # a key of results.json's `test`; None: the test twin of the monitored metric
    overrides: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()  # more overrides under --quick only


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    tasks: list[Task] = field(default_factory=list)


def suite_path(name_or_path: str) -> Path:
    """A suite file's path, or a name in recipes/suites/."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return path
    return SUITES_DIR / f"{name_or_path}.yaml"


def check_override(item: str) -> str:
    key, sep, _ = item.partition("=")
    if not sep or not key.strip("-").strip():
        raise ConfigError(f"override {item!r}: write KEY=VALUE, e.g. data.backbone=minilm-l6")
    return item


def load_suite(name_or_path: str) -> Suite:
    """Read a suite file: `tasks`, each a `recipe` (a name in the suite's recipes/ folder, or a path) with an
    optional `name`, `metric`, `overrides` and `quick` (lists of KEY=VALUE)."""
    path = suite_path(name_or_path)
    if not path.is_file():
        known = sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))
        raise ConfigError(f"no suite file {path}" + (f" (suites here: {known})" if known else ""))
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = config.get("tasks") if isinstance(config, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: a suite needs `tasks:`, a list of {{recipe: NAME, metric: test/...}}")
    tasks = []
    for entry in entries:
        entry = {"recipe": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or not entry.get("recipe"):
            raise ConfigError(f"{path}: every task needs a `recipe` (got {entry!r})")
        recipe = str(entry["recipe"])
        recipe_path = Path(recipe) if recipe.endswith((".yaml", ".yml")) else path.parent.parent / f"{recipe}.yaml"
        tasks.append(
            Task(
                name=str(entry.get("name") or recipe_path.stem),
                recipe=recipe_path,
                metric=entry.get("metric"),
                overrides=tuple(check_override(str(o)) for o in entry.get("overrides") or ()),
                quick=tuple(check_override(str(o)) for o in entry.get("quick") or ()),
            )
        )
    names = [t.name for t in tasks]
    if len(set(names)) < len(names):
        raise ConfigError(f"{path}: two tasks share a name; give one a `name:`")
    return Suite(str(config.get("name") or path.stem), path, tasks)


def as_arguments(overrides: Sequence[str]) -> list[str]:
    """`data.backbone=minilm-l6` → `--data.backbone minilm-l6`, as `n2m fit` takes it."""
    out = []
    for item in overrides:
        key, _, value = item.partition("=")
        out += [f"--{key.strip().lstrip('-')}", value]
    return out


def fit_arguments(task: Task, overrides: Sequence[str], quick: bool) -> list[str]:
    """The task's `n2m fit` arguments after `fit`, less the run folder. Later settings win: quick's limits, then
    the suite's overrides, then the command line's, so an explicit override beats a quick default."""
    chosen = [*(QUICK if quick else ()), *(task.quick if quick else ()), *task.overrides, *overrides]
    return ["--config", str(task.recipe), *as_arguments(chosen)]


def recipe_digest(recipe: Path) -> str:
    return hashlib.sha256(recipe.read_bytes()).hexdigest()


def finished(run_dir: Path, record: dict[str, Any]) -> bool:
    """--resume keeps a run that was tested (results.json) with the same recipe text and arguments."""
    try:
        done = json.loads((run_dir / BENCH_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (run_dir / "results.json").is_file() and done == record


def error_line(log: Path, exit_code: int) -> str:
    """Why a run failed, in a line: n2m's own `n2m: error:` line, else the log's last line."""
    try:
        lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        lines = []
    lines = [line for line in lines if line]
    errors = [line for line in lines if line.startswith("n2m: error:")]
    last = errors[-1] if errors else (lines[-1] if lines else "")
    return f"exit {exit_code}: {last}"[:500]


def fit(arguments: list[str], log: Path, echo: bool, timeout_s: float | None) -> int:
    """`n2m fit` in its own process (a crash, a leak or an out-of-memory kill ends that recipe, not the suite),
    its output to `log` (and to ours with `echo`); without a terminal it prints progress lines, not a bar."""
    env = {"TOKENIZERS_PARALLELISM": "false", **os.environ, "PYTHONIOENCODING": "utf-8"}
    command = [sys.executable, "-m", "n2m.cli", "fit", *arguments]
    with (
        log.open("w", encoding="utf-8") as out,
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=env,
        ) as process,
    ):
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            process.kill()

        timer = threading.Timer(timeout_s, stop) if timeout_s else None
        if timer:
            timer.start()
        try:
            for line in process.stdout or ():
                out.write(line)
                out.flush()
                if echo:
                    sys.stdout.write(line)
                    sys.stdout.flush()
            code = process.wait()
        finally:
            if timer:
                timer.cancel()
        if timed_out.is_set():
            out.write(f"\nn2m: error: stopped after the bench's --timeout ({timeout_s:.0f} s)\n")
    return code


def run_task(
    task: Task,
    run_dir: Path,
    overrides: Sequence[str],
    quick: bool = False,
    resume: bool = False,
    echo: bool = False,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Train and test one task in `run_dir` (kept as it is with `resume` when it finished with the same recipe
    and arguments); its leaderboard entry: status `trained`, `kept` or `failed`, the metric, value, fit time."""
    arguments = fit_arguments(task, overrides, quick)
    entry = new_entry(task, run_dir, overrides, quick)
    if not task.recipe.is_file():
        entry["error"] = f"no recipe file {task.recipe}"
        return entry
    record = {"recipe": str(task.recipe), "recipe_sha256": recipe_digest(task.recipe), "arguments": arguments}
    if resume and finished(run_dir, record):
        entry["status"] = "kept"
    else:
        shutil.rmtree(run_dir, ignore_errors=True)  # nothing of an older run may pass for this one's
        run_dir.mkdir(parents=True)
        (run_dir / BENCH_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        started = time.monotonic()
        code = fit([*arguments, "--trainer.default_root_dir", str(run_dir)], run_dir / LOG_FILE, echo, timeout_s)
        entry["wall_s"] = round(time.monotonic() - started, 1)
        if code != 0 or not (run_dir / "results.json").is_file():
            entry["error"] = error_line(run_dir / LOG_FILE, code)
            return entry
        entry["status"] = "trained"
    return read_result(entry, run_dir)


def new_entry(task: Task, run_dir: Path, overrides: Sequence[str], quick: bool) -> dict[str, Any]:
    """A leaderboard entry before its run: failed until a result says otherwise."""
    return {"recipe": str(task.recipe), "metric": task.metric, "value": None, "fit_s": None, "machine": None,
            "date": None, "overrides": [*task.overrides, *overrides], "quick": quick, "run_dir": str(run_dir),
            "status": "failed", "error": None}  # fmt: skip


def read_result(entry: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The task's number, as the run's results.json has it."""
    return with_result(entry, json.loads((run_dir / "results.json").read_text(encoding="utf-8")))


def with_result(entry: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """`entry` with the task's metric, value, fit time, machine and date from a run's results.json (or a report
    that holds it)."""
    test = results.get("test") or {}
    metric = entry["metric"] or next((f"test/{k.removeprefix('val/')}" for k in results.get("best_val") or {}), None)
    if metric not in test:
        entry.update(status="failed", error=f"results.json's test has no {metric} (it has {sorted(test)})")
        return entry
    entry.update(metric=metric, value=float(test[metric]), fit_s=results.get("fit_wall_s"),
                 machine=results.get("machine"), date=results.get("date"))  # fmt: skip
    return entry
