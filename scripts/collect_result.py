"""Keep a finished run's report as results/recipes/<recipe>.json, with the recipe, command and test split.

python scripts/collect_result.py ko-chatbot                                  # the recipe's default_root_dir
python scripts/collect_result.py ko-en-translation runs/bench-seq2seq/n2m    # the same recipe, run elsewhere
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_split(data: dict[str, Any]) -> str:
    """Where the test examples came from: a file, a committed split, or a seeded ratio of the train file."""
    if data.get("test"):
        return data["test"]
    if data.get("split_file"):
        return f"test part of {data['split_file']}"
    train = data["train"] if isinstance(data["train"], str) else "the train files"
    return f"{data.get('test_ratio')} of {train} (split_seed {data.get('split_seed')})"


def main(recipe: str, run_dir: str | None = None) -> None:
    config = yaml.safe_load((ROOT / f"recipes/{recipe}.yaml").read_text(encoding="utf-8"))
    root = ROOT / (run_dir or config["trainer"]["default_root_dir"])
    report = json.loads((root / "results.json").read_text(encoding="utf-8"))
    report = {
        "recipe": f"recipes/{recipe}.yaml",
        "command": f"n2m fit --config recipes/{recipe}.yaml",
        "test_file": test_split(config["data"]),
        **({"run_dir": run_dir} if run_dir else {}),
        "chrf_word_order": 0,  # n2m's `chrf` is characters only (chrF); `chrf++` is reported under its own name
        **report,
    }
    target = ROOT / "results/recipes" / f"{recipe}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report["test"], indent=2))


if __name__ == "__main__":
    main(*sys.argv[1:3])
