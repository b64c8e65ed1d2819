"""Seed a suite folder's leaderboard with the tasks a suite already ran, from their committed reports.

A suite runs for hours; when its run folders are gone (a fresh clone, another machine) the tasks that finished
live on in results/recipes/<recipe>.json, kept by scripts/collect_result.py from the run folder `n2m bench` wrote.
This writes their rows to OUT/suite.json (status `report`, the report named in `source`), so that
`n2m bench --only <the rest> --out OUT` trains only the rest and writes one leaderboard with both.

    python scripts/suite_from_reports.py runs/bench/korean            # every task whose report that suite wrote
    n2m bench --only ko-chatbot ko-caption --out runs/bench/korean     # then the rest

A report counts only when its run folder is OUT/<task> (it came from this suite, not from another run of the
recipe); one whose test split lacks the task's metric is a failed row, as `n2m bench` records it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from n2m.bench.leaderboard import SUITE_JSON, leaderboard
from n2m.bench.suite import DEFAULT_SUITE, load_suite, new_entry, with_result

ROOT = Path(__file__).resolve().parents[1]


def main(out: str, suite_name: str = DEFAULT_SUITE) -> None:
    suite = load_suite(suite_name)
    rows = {}
    for task in suite.tasks:
        path = ROOT / "results/recipes" / f"{task.recipe.stem}.json"  # as collect_result.py names it
        if not path.is_file():
            continue
        report = json.loads(path.read_text(encoding="utf-8"))
        if Path(report.get("run_dir") or "") != Path(out) / task.name:
            continue
        entry = with_result(new_entry(task, Path(report["run_dir"]), [], False), report)
        status = "report" if entry["error"] is None else "failed"
        rows[task.name] = {**entry, "status": status, "source": str(path.relative_to(ROOT))}
    target = Path(out) / SUITE_JSON
    target.parent.mkdir(parents=True, exist_ok=True)
    board = leaderboard(suite.name, str(suite.path), rows, [], False)
    target.write_text(json.dumps(board, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{target}: {len(rows)} of {len(suite.tasks)} tasks from reports: {', '.join(rows) or 'none'}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
