"""Ensembles of exported N21 models: the (weighted) mean of their scores or class probabilities.

Members may differ in everything but the task: a bi-encoder and a cross-encoder, other backbones, other
folds. `n2m ensemble OUT MODEL...` writes a folder whose `n2m.json` lists the members (relative paths when
they sit inside it or beside it) and their weights; `Predictor.from_pretrained(OUT)` loads it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from n2m.outputs import Prediction, decode_outputs
from n2m.predictor import Input, Predictor, SequencePredictor
from n2m.schema import SCHEMA_FILE, read_info

Weighting = Literal["mean", "validation"]


class EnsemblePredictor(Predictor):
    def __init__(self, members: Sequence[SequencePredictor], weights: Sequence[float] | None = None) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        first = members[0].schema
        for m in members[1:]:
            if (m.schema.objective, m.schema.label_names, m.schema.inputs) != (
                first.objective,
                first.label_names,
                first.inputs,
            ):
                raise ValueError("ensemble members must share objective, label names and inputs")
        weights = list(weights) if weights is not None else [1.0] * len(members)
        if len(weights) != len(members) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"need one non-negative weight per member, got {weights}")
        self.members = list(members)
        self.weights = torch.tensor(weights, dtype=torch.float) / sum(weights)
        self.schema = first

    @classmethod
    def _load(cls, folder: Path, device: str) -> EnsemblePredictor:
        info = read_info(folder)
        members = [SequencePredictor._load((folder / m).resolve(), device) for m in info["members"]]
        return cls(members, info["weights"])

    @property
    def info(self) -> dict[str, Any]:
        return {**super().info, "ensemble": {"members": len(self.members), "weights": self.weights.tolist()}}

    def predict_outputs(self, inputs: Sequence[Input], batch_size: int = 64) -> torch.Tensor:
        outputs = [m.predict_outputs(inputs, batch_size) for m in self.members]
        return sum(w * o for w, o in zip(self.weights, outputs, strict=True))

    def predict(self, inputs: Sequence[Input], batch_size: int = 64, **options: Any) -> list[Prediction]:
        return decode_outputs(self.predict_outputs(inputs, batch_size), self.schema, **options)


def member_weights(folders: Sequence[Path], weighting: Weighting) -> list[float]:
    """Equal weights, or each member's best validation score as exported (e.g. its dev Pearson)."""
    if weighting == "mean":
        return [1.0] * len(folders)
    weights = []
    for folder in folders:
        validation = read_info(folder).get("extra", {}).get("validation") or {}
        if not validation:
            raise ValueError(f"{folder} records no validation score: use --weighting mean")
        weights.append(max(0.0, next(iter(validation.values()))))
    return weights


def save_ensemble(out_dir: str | Path, members: Sequence[str | Path], weighting: Weighting = "mean") -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    folders = [Path(m).resolve() for m in members]
    first = read_info(folders[0])
    info = {
        "shape": "ensemble",
        "member_shape": first["shape"],
        "members": [os.path.relpath(f, out.resolve()) for f in folders],
        "weights": member_weights(folders, weighting),
        "weighting": weighting,
    }
    (out / SCHEMA_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    EnsemblePredictor._load(out, "cpu")  # fail now, not when serving, if members do not fit together
    return out
