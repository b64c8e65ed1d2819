"""`n2m bench [SUITE] [--override KEY=VALUE ...] [--quick] [--resume] [--compare OTHER_DIR]`."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from n2m.bench.leaderboard import SUITE_HTML, SUITE_JSON, leaderboard, metric_name, minutes, shown, write_leaderboard
from n2m.bench.suite import DEFAULT_SUITE, Suite, check_override, fit_arguments, load_suite, run_task
from n2m.errors import ConfigError

EPILOG = """examples:
  n2m bench                                                 # every Korean recipe (recipes/suites/korean.yaml)
  n2m bench --quick --out runs/bench/ci                     # 2 batches of each: does every recipe still run?
  n2m bench --override data.backbone=minilm-l6 --out runs/bench/minilm --compare runs/bench/korean
  n2m bench --only klue-nli ko-hate-speech --resume         # some tasks; finished runs are kept
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="n2m bench",
        description="Train and test every recipe of a suite as `n2m fit` does (each in its own process; a failed "
        "recipe is recorded and the suite goes on), then write one leaderboard: suite.json, suite.md, suite.html.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("suite", nargs="?", default=DEFAULT_SUITE,
                   help="a suite file, or a name in recipes/suites/ (default: %(default)s)")  # fmt: skip
    p.add_argument("--out", default=None, help="the suite's folder: a run folder per task and the leaderboard "
                   "(default: runs/bench/SUITE, or runs/bench/SUITE-quick)")  # fmt: skip
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE", type=check_override,
                   help="a setting for every recipe, as `n2m fit --KEY VALUE` takes it (repeatable)")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="CI: one epoch of 2 batches, 2 validation and 2 test "
                   "batches, short texts (a check that every recipe runs, not a measurement)")  # fmt: skip
    p.add_argument("--resume", action="store_true", help="keep a task whose run folder holds results.json from the "
                   "same recipe and arguments; run the others")  # fmt: skip
    p.add_argument("--compare", default=None, metavar="OTHER_DIR", help="another suite's folder: its values beside")
    p.add_argument("--only", nargs="+", default=None, metavar="TASK", help="run only these tasks of the suite")
    p.add_argument("--timeout", type=float, default=None, metavar="MINUTES", help="stop a recipe after this long")
    p.add_argument("--verbose", action="store_true", help="print each run's output too (it is always in its fit.log)")
    p.add_argument("--dry-run", action="store_true", help="print each task's `n2m fit` command and stop")
    return p


def earlier_rows(out: Path, overrides: list[str], quick: bool) -> dict[str, dict]:
    try:
        board = json.loads((out / SUITE_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    same = board.get("overrides") == overrides and board.get("quick") == quick
    return dict(board.get("tasks") or {}) if same else {}


def board_of(suite: Suite, entries: dict[str, dict], args: argparse.Namespace) -> dict:
    """The leaderboard of `entries` (with --only, the suite's other tasks keep their rows from an earlier bench
    with the same settings), in the suite's order."""
    ordered = {t.name: entries[t.name] for t in suite.tasks if t.name in entries}
    return leaderboard(suite.name, str(suite.path), ordered, args.override, args.quick)


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    suite = load_suite(args.suite)
    tasks = suite.tasks
    if args.only:
        unknown = sorted(set(args.only) - {t.name for t in tasks})
        if unknown:
            raise ConfigError(f"--only {unknown}: not in {suite.path} (it has {[t.name for t in tasks]})")
        tasks = [t for t in tasks if t.name in args.only]
    if args.compare and not (Path(args.compare) / SUITE_JSON).is_file():
        raise ConfigError(f"--compare {args.compare}: no suite.json there (a folder `n2m bench` wrote)")
    out = Path(args.out or f"runs/bench/{suite.name}{'-quick' if args.quick else ''}")
    if args.dry_run:
        for task in tasks:
            arguments = fit_arguments(task, args.override, args.quick)
            print(shlex.join(["n2m", "fit", *arguments, "--trainer.default_root_dir", str(out / task.name)]))
        return
    entries: dict[str, dict] = {}
    earlier = earlier_rows(out, args.override, args.quick) if args.only else {}
    for i, task in enumerate(tasks, 1):
        print(f"[{i}/{len(tasks)}] {task.name}: {'checking' if args.resume else 'training'} "
              f"(log: {out / task.name / 'fit.log'})", flush=True)  # fmt: skip
        timeout_s = args.timeout * 60 if args.timeout else None
        entry = run_task(task, out / task.name, args.override, args.quick, args.resume, args.verbose, timeout_s)
        entries[task.name] = entry
        if entry["status"] == "failed":
            print(f"[{i}/{len(tasks)}] {task.name}: failed, {entry['error']}", flush=True)
        else:
            print(f"[{i}/{len(tasks)}] {task.name}: {metric_name(entry['metric'])} "
                  f"{shown(entry['metric'], entry['value'])}, fit {minutes(entry['fit_s'])} ({entry['status']})",
                  flush=True)  # fmt: skip
        # after every task, so a suite stopped after hours keeps a leaderboard of what finished
        paths = write_leaderboard(out, board_of(suite, {**earlier, **entries}, args), args.compare)
    print(f"leaderboard: {paths[1]}, {out / SUITE_HTML}")
    failed = [name for name, e in entries.items() if e["status"] == "failed"]
    if failed:
        raise SystemExit(f"n2m bench: {len(failed)} of {len(entries)} tasks failed: {', '.join(failed)}")
