"""N21's result types, and model outputs (scores or probabilities) decoded into them."""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
OUTPUT_TYPES = {
    "regression": ScorePrediction,
    "classification": ClassPrediction,
    "multilabel": LabelsPrediction,
    "retrieval": ScorePrediction,  # a pair's cosine similarity
}


def decode_output(output: torch.Tensor, objective: str, labels: list[str] | None, threshold: float = 0.5) -> Prediction:
    """One input's output (a score, or probabilities `(C,)`, see `SequenceModel.to_outputs`) → its result."""
    if objective in ("regression", "retrieval"):
        return ScorePrediction(float(output))
    probs = {name: float(p) for name, p in zip(labels or [], output.tolist(), strict=True)}
    if objective == "classification":
        return ClassPrediction(max(probs, key=probs.__getitem__), probs)
    return LabelsPrediction([n for n, p in probs.items() if p >= threshold], probs)
