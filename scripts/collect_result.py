"""Keep a finished run's report as results/recipes/<recipe>.json, with the recipe, command and test file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def main(recipe: str) -> None:
    config = yaml.safe_load((ROOT / f"recipes/{recipe}.yaml").read_text(encoding="utf-8"))
    root = ROOT / config["trainer"]["default_root_dir"]
    report = json.loads((root / "results.json").read_text(encoding="utf-8"))
    report = {
        "recipe": f"recipes/{recipe}.yaml",
        "command": f"n2m fit --config recipes/{recipe}.yaml",
        "test_file": config["data"].get("test"),
        **report,
    }
    target = ROOT / "results/recipes" / f"{recipe}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report["test"], indent=2))


if __name__ == "__main__":
    main(sys.argv[1])
