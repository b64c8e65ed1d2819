"""What a report is made from: the run folder's recipe, results, CSV log and test predictions."""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass
class Run:
    """One `n2m fit` run folder, read."""

    folder: Path
    shape: str
    config_text: str  # the recipe as the CLI saved it (every setting, defaults included)
    config: dict[str, Any]
    results: dict[str, Any]  # results.json; empty when the run was not tested
    metrics: list[dict[str, float]]  # the CSV logger's rows, numbers only

    @property
    def best_epoch(self) -> int | None:
        """The epoch of the checkpoint validation chose (its file name says it)."""
        match = re.search(r"epoch=(\d+)", str(self.results.get("best_checkpoint") or ""))
        return int(match.group(1)) if match else None

    def setting(self, *keys: str, default: Any = None) -> Any:
        """A value of the saved recipe, e.g. `setting("data", "objective")`."""
        value: Any = self.config
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return default if value is None else value


def latest_log(folder: Path) -> Path | None:
    """The newest `logs/version_<n>` (a second fit in the same folder starts a new version)."""
    versions = [p for p in (folder / "logs").glob("version_*") if p.name.split("_")[-1].isdigit()]
    return max(versions, key=lambda p: int(p.name.split("_")[-1]), default=None)


def read_metrics(path: Path) -> list[dict[str, float]]:
    """metrics.csv → one dict per row with the columns that hold a number in it."""
    if not path.is_file():
        return []
    rows = []
    with path.open(encoding="utf-8", newline="") as f:
        for record in csv.DictReader(f):
            row = {}
            for key, value in record.items():
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    continue
                if not math.isnan(number):
                    row[key] = number
            rows.append(row)
    return rows


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_run(folder: str | Path) -> Run:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such run folder")
    log = latest_log(folder)
    config_path = next(
        (p for p in [log / "config.yaml" if log else None, folder / "config.yaml"] if p and p.is_file()), None
    )
    config_text = config_path.read_text(encoding="utf-8") if config_path else ""
    config = yaml.safe_load(config_text) if config_text else {}
    config = config if isinstance(config, dict) else {}
    results_path = folder / "results.json"
    results = json.loads(results_path.read_text(encoding="utf-8")) if results_path.is_file() else {}
    metrics = read_metrics(log / "metrics.csv") if log else []
    if not config and not results and not metrics:
        raise FileNotFoundError(f"{folder} holds no n2m run (no logs/version_*/config.yaml, results.json or metrics)")
    return Run(folder, str(config.get("shape") or "N21"), config_text, config, results, metrics)
