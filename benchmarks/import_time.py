"""Cold import time of the inference entry point: `from n2m import Predictor` in a fresh interpreter.

Each of `--runs` child processes times the import with `time.perf_counter()` around it (interpreter start-up
not counted) and reports which training-only packages it pulled in (Lightning under its three names,
torchmetrics). Separately, as many children time `import torch, transformers` alone: the floor any inference
path pays. Median and min of each are written under `--label` into the results file; entries of other labels
are kept, and when labels starting with "before" and "after" are both there, the after / before ratio is
written too. Children run one kind after the other, after one untimed warm-up each, with their bytecode cached
in a folder of their own (`PYTHONPYCACHEPREFIX`), so no run compiles and no source tree gets `__pycache__`.

    python benchmarks/import_time.py --label "before (2681e40)" --src <worktree of 2681e40>/src
    python benchmarks/import_time.py --label after          # the n2m this interpreter imports
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine, today  # noqa: E402
from docs_pages import write_pages  # noqa: E402

WATCHED = ("lightning", "lightning.pytorch", "pytorch_lightning", "torchmetrics")
LIGHTNING = WATCHED[:3]
PYCACHE = Path(tempfile.gettempdir()) / "n2m-import-time-pycache"

PREDICTOR_CHILD = f"""
import json, sys, time
start = time.perf_counter()
from n2m import Predictor
seconds = time.perf_counter() - start
import n2m
print(json.dumps({{"seconds": seconds, "modules": [m for m in {WATCHED!r} if m in sys.modules],
                  "n2m_from": str(n2m.__path__[0])}}))
"""

FLOOR_CHILD = """
import json, time
start = time.perf_counter()
import torch, transformers
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def child_env(src: str | None) -> dict[str, str]:
    """This environment, with `src` first on PYTHONPATH and bytecode read from and written to `PYCACHE`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if src:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(src).resolve()), *filter(None, [env.get("PYTHONPATH")])])
    env.update(PYTHONPYCACHEPREFIX=str(PYCACHE), TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    return env


def run_child(code: str, env: dict[str, str]) -> dict[str, Any]:
    """Run `code` in a fresh interpreter (from a neutral folder, so nothing is imported from the working
    directory) and return the JSON object it prints last."""
    with tempfile.TemporaryDirectory() as cwd:
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd)
    if result.returncode != 0:
        raise RuntimeError(f"child failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def timed(code: str, env: dict[str, str], runs: int) -> list[dict[str, Any]]:
    run_child(code, env)  # warm-up: fills the bytecode cache and the page cache, not counted
    return [run_child(code, env) for _ in range(runs)]


def measure(runs: int, src: str | None) -> dict[str, Any]:
    env = child_env(src)
    predictor = timed(PREDICTOR_CHILD, env, runs)
    floor = timed(FLOOR_CHILD, env, runs)
    origins = {r["n2m_from"] for r in predictor}
    if src and origins != {str(Path(src).resolve() / "n2m")}:
        raise RuntimeError(f"the children imported n2m from {sorted(origins)}, not from {src}")
    modules = sorted({m for r in predictor for m in r["modules"]}, key=WATCHED.index)
    if any(r["modules"] != predictor[0]["modules"] for r in predictor):
        print(f"warning: the modules loaded differ between runs: {[r['modules'] for r in predictor]}")
    seconds = [r["seconds"] for r in predictor]
    floor_seconds = [r["seconds"] for r in floor]
    return {
        "median_s": round(statistics.median(seconds), 4),
        "min_s": round(min(seconds), 4),
        "runs": runs,
        "lightning_loaded": any(m in modules for m in LIGHTNING),
        "modules": modules,
        "torch_transformers_floor_median_s": round(statistics.median(floor_seconds), 4),
        "torch_transformers_floor_min_s": round(min(floor_seconds), 4),
        "n2m_from": origins.pop(),
        "date": today(),
    }


def with_ratio(results: dict[str, Any]) -> dict[str, Any]:
    """`ratio`: after / before of the median and the min, when a label starting with "before" and one starting
    with "after" are both there (the latest of each)."""
    labels = results["labels"]
    before = [k for k in labels if k.startswith("before")]
    after = [k for k in labels if k.startswith("after")]
    results.pop("ratio", None)
    if before and after:
        b, a = labels[before[-1]], labels[after[-1]]
        results["ratio"] = {
            "after": after[-1],
            "before": before[-1],
            "median": round(a["median_s"] / b["median_s"], 3),
            "min": round(a["min_s"] / b["min_s"], 3),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help='e.g. "before (2681e40)" or "after"')
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--src", help="a src folder put first on the children's PYTHONPATH")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks/results/import_time.json")
    args = parser.parse_args()

    entry = measure(args.runs, args.src)
    print(json.dumps({args.label: entry}, indent=2))
    results: dict[str, Any] = {"machine": machine(), "date": today(), "labels": {}}
    if args.results.is_file():
        kept = json.loads(args.results.read_text(encoding="utf-8"))
        if kept.get("machine") != results["machine"]:
            print(f"warning: earlier entries were measured on {kept.get('machine')!r}, not {results['machine']!r}")
        results["labels"] = kept.get("labels", {})
    results["labels"].pop(args.label, None)  # a rerun of a label moves it last
    results["labels"][args.label] = entry
    results = with_ratio(results)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_pages("import_time", written_to=args.results.parent)
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
