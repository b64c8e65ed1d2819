"""Results written to a file ready to submit (CSV or JSONL), one row per input, ids kept (every shape)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any


def prediction_rows(predictions: Sequence[Any], ids: Sequence[str | None]) -> list[dict[str, Any]]:
    """One row per input: its id (the row number when the file has none) and the result's fields."""
    return [
        {"id": id_ if id_ is not None else str(i), **asdict(pred)}
        for i, (pred, id_) in enumerate(zip(predictions, ids, strict=True))
    ]


def write_rows(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    """`.jsonl` writes one object per input. Anything else writes CSV: a `probabilities` mapping becomes one
    `p_<label>` column per class, lists are comma-joined, other nested values are written as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        with path.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    flat = []
    for row in rows:
        row = dict(row)
        probs = row.pop("probabilities", None) or {}
        for key, value in row.items():
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                row[key] = ",".join(value)
            elif isinstance(value, list | dict):
                row[key] = json.dumps(value, ensure_ascii=False)
        flat.append({**row, **{f"p_{k}": round(v, 6) for k, v in probs.items()}})
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(flat[0]) if flat else ["id"])
        writer.writeheader()
        writer.writerows(flat)
