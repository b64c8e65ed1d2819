"""Same seed, same figures? The quick modes of the three side-by-side benchmarks, run on one checkout of n2m.

Runs `sts_vs_hf.py --quick`, `ner_vs_hf.py --quick` and `seq2seq_vs_hf.py --quick` of `--repo` (its benchmark
scripts on its own `src/`), one after the other, and keeps what a change of code must not move: each side's
quality figures, and n2m's test and validation losses (finer than the quick modes' F1 and BLEU, which are 0
after a few steps) and a digest of its test generations. Speed and memory are left out: they are noise here.
Entries are kept by `--label` in `benchmarks/results/quick_parity.json`, beside the other labels' entries.

    git worktree add /tmp/n2m-before 2681e40
    python benchmarks/quick_parity.py --label "before (2681e40)" --repo /tmp/n2m-before
    python benchmarks/quick_parity.py --label after
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine, today  # noqa: E402
from docs_pages import write_pages  # noqa: E402

QUALITY = {
    "sts_vs_hf": ("pearson", "spearman", "val_pearson"),
    "ner_vs_hf": ("f1", "precision", "recall", "f1_argmax", "f1_constrained"),
    "seq2seq_vs_hf": ("bleu", "chrf"),
}
RUN_METRICS = ("test/loss", "val/loss", "test/pearson", "test/chrf", "val/chrf", "val/spearman")


def run(repo: Path, name: str, work: Path) -> dict[str, Any]:
    """One quick benchmark of `repo`; its results file is moved out of the repo into `work`."""
    out = work / f"runs-{name}"
    command = [sys.executable, str(repo / "benchmarks" / f"{name}.py"), "--quick", "--out", str(out)]
    if name == "sts_vs_hf":
        command += ["--results-dir", str(work)]
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "TOKENIZERS_PARALLELISM": "false"}
    subprocess.run(command, cwd=repo, env=env, check=True)
    for suffix in ("json", "md"):  # the other two write beside the committed results: move them out
        written = repo / "benchmarks/results" / f"{name}.quick.{suffix}"
        if name != "sts_vs_hf" and written.is_file():
            shutil.move(written, work / written.name)
    report = json.loads((work / f"{name}.quick.json").read_text(encoding="utf-8"))
    n2m_run = json.loads((out / "n2m/results.json").read_text(encoding="utf-8"))
    figures: dict[str, Any] = {
        side: {key: report[side].get(key) for key in QUALITY[name] if key in report[side]} for side in ("n2m", "hf")
    }
    figures["n2m_run"] = {k: v for k, v in n2m_run["test"].items() if k in RUN_METRICS}
    generations = out / "n2m/test_generations.jsonl"
    if generations.is_file():
        figures["n2m_test_generations_sha256"] = hashlib.sha256(generations.read_bytes()).hexdigest()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True)
    parser.add_argument("--repo", type=Path, default=ROOT, help="the checkout whose benchmarks and src run")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks/results/quick_parity.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="n2m-parity-") as tmp:
        entry = {name: run(args.repo.resolve(), name, Path(tmp)) for name in QUALITY}
    results = json.loads(args.results.read_text(encoding="utf-8")) if args.results.is_file() else {"labels": {}}
    results["labels"][args.label] = {"date": today(), **entry}
    results["machine"] = machine()
    labels = list(results["labels"].values())
    if len(labels) >= 2:  # the figures of the first and the last label, compared
        first, last = ({k: v for k, v in e.items() if k != "date"} for e in (labels[0], labels[-1]))
        results["identical"] = first == last
    args.results.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_pages("quick_parity", written_to=args.results.parent)
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
