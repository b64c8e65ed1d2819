"""Typed N21 results, and writing them to a file ready to submit (CSV or JSONL, ids kept)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from n2m.schema import TaskSchema


@dataclass
class ScorePrediction:
    score: float


@dataclass
class ClassPrediction:
    label: str
    probabilities: dict[str, float]


@dataclass
class LabelsPrediction:
    labels: list[str]
    probabilities: dict[str, float]


Prediction = ScorePrediction | ClassPrediction | LabelsPrediction


def decode_outputs(outputs: torch.Tensor, schema: TaskSchema, threshold: float = 0.5) -> list[Prediction]:
    """Model outputs (scores or probabilities, see `SequenceModel.to_outputs`) → typed results."""
    if schema.objective == "regression":
        return [ScorePrediction(float(s)) for s in outputs.tolist()]
    names = schema.label_names or []
    results: list[Prediction] = []
    for row in outputs.tolist():
        probs = {name: float(p) for name, p in zip(names, row, strict=True)}
        if schema.objective == "classification":
            results.append(ClassPrediction(max(probs, key=probs.__getitem__), probs))
        else:
            results.append(LabelsPrediction([n for n, p in probs.items() if p >= threshold], probs))
    return results


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
