"""How big the package is: lines of `src/n2m` (all, and code only: no blank lines, comments or docstrings), and,
where the tool library's `duplicates` command is on PATH, how many pairs of places share six or more lines.

Entries are kept by `--label` in benchmarks/results/code_size.json:

    git worktree add /tmp/n2m-before 2681e40
    python benchmarks/code_size.py --label "before (2681e40)" --src /tmp/n2m-before/src
    python benchmarks/code_size.py --label after
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from docs_pages import write_pages  # noqa: E402


def docstring_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and body:
            first = body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def count(package: Path) -> dict[str, int]:
    total = code = 0
    for path in sorted(package.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        skipped = docstring_lines(ast.parse(text))
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT and lines[token.start[0] - 1].strip().startswith("#"):
                skipped.add(token.start[0])
        total += len(lines)
        code += sum(1 for i, line in enumerate(lines, 1) if line.strip() and i not in skipped)
    return {"lines": total, "code_lines": code}


def duplicate_pairs(src: Path) -> dict[str, Any] | None:
    """The `duplicates` summary over `src` (None where the command is not installed)."""
    if not shutil.which("duplicates"):
        return None
    done = subprocess.run(["duplicates", "--seconds", "120"], cwd=src, capture_output=True, text=True)
    summary = next((line for line in done.stdout.splitlines() if "pairs of places" in line), "")
    match = re.match(r"(\d+) pairs", summary)
    return {"pairs": int(match.group(1)) if match else None, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True)
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="a src folder holding the n2m package")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks/results/code_size.json")
    args = parser.parse_args()
    entry = {**count(args.src / "n2m"), "duplicates": duplicate_pairs(args.src)}
    results = json.loads(args.results.read_text(encoding="utf-8")) if args.results.is_file() else {"labels": {}}
    results["labels"][args.label] = entry
    args.results.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    write_pages("code_size", written_to=args.results.parent)
    print(json.dumps(entry, indent=2))


if __name__ == "__main__":
    main()
