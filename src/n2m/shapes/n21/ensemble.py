"""Ensembles of exported N21 models: the (weighted) mean of their scores or class probabilities.

Members may differ in everything but the task: a bi-encoder and a cross-encoder, other backbones, other
folds. `n2m ensemble OUT MODEL...` writes a folder whose `n2m.json` (shape `ensemble`, what its members
predict, and in its settings the members — relative paths when they sit inside it or beside it — and their
weights); `Predictor.from_pretrained(OUT)` loads it.

Weights: equal (`mean`), each member's own validation score (`validation`), or fitted on a labelled
validation file (`fit`). Members' scores are often close while their worth to the ensemble is not: only
`fit` can give a weaker but different member the small weight that helps, instead of an almost equal one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import torch

from n2m import __version__
from n2m.core.card import ModelCard
from n2m.shapes.n21.examples import Columns, check_known_labels, load_sequence_examples
from n2m.shapes.n21.predictor import Input, SequencePredictor

Weighting = Literal["mean", "validation", "fit"]


class EnsemblePredictor(SequencePredictor):
    """The weighted mean of its members' outputs, decoded as one N21 model's; each member tokenizes the raw
    inputs its own way (a bi-encoder and a cross-encoder can be members together)."""

    def __init__(self, members: Sequence[SequencePredictor], weights: Sequence[float] | None = None) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        first = members[0].card
        for m in members[1:]:
            if (m.card.task, m.card.labels, m.card.inputs) != (first.task, first.labels, first.inputs):
                raise ValueError("ensemble members must share objective, label names and inputs")
        weights = list(weights) if weights is not None else [1.0] * len(members)
        if len(weights) != len(members) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"need one non-negative weight per member, got {weights}")
        super().__init__(None, members[0].tokenizer, replace(first, shape="ensemble"))
        self.members = list(members)
        self.weights = torch.tensor(weights, dtype=torch.float) / sum(weights)

    @classmethod
    def load(cls, folder: Path, card: ModelCard, device: str = "cpu") -> EnsemblePredictor:
        paths = [(folder / m).resolve() for m in card.settings["members"]]
        members = [SequencePredictor.load(path, ModelCard.load(path), device) for path in paths]
        ensemble = cls(members, card.settings["weights"])
        ensemble.card = card
        return ensemble

    @property
    def info(self) -> dict[str, Any]:
        return {**super().info, "ensemble": {"members": len(self.members), "weights": self.weights.tolist()}}

    def preprocess(self, inputs: Sequence[Input]) -> list[Input]:
        self.split_inputs(inputs)  # the same checks as a member's, once
        return list(inputs)

    def run(self, features: list[Input], batch_size: int | None = None, **options: Any) -> list[torch.Tensor]:
        """Each member batches the inputs its own way (its tokens' lengths); their outputs are averaged."""
        outputs = [m.predict_outputs(features, batch_size) for m in self.members]
        return list(sum(w * o for w, o in zip(self.weights, outputs, strict=True)))


def member_weights(folders: Sequence[Path], weighting: Weighting) -> list[float]:
    """Equal weights, or each member's best validation score as exported (e.g. its dev Pearson)."""
    if weighting == "mean":
        return [1.0] * len(folders)
    weights = []
    for folder in folders:
        validation = ModelCard.load(folder).provenance.get("validation") or {}
        if not validation:
            raise ValueError(f"{folder} records no validation score: use --weighting mean")
        weights.append(max(0.0, next(iter(validation.values()))))
    return weights


def ensemble_score(outputs: torch.Tensor, target: torch.Tensor, objective: str) -> float:
    """The validation score `fit` maximizes: Pearson for scores, accuracy for classes, micro F1 for label sets."""
    if objective == "regression":
        return float(torch.corrcoef(torch.stack([outputs.flatten(), target.flatten()]))[0, 1])
    if objective == "classification":
        return float((outputs.argmax(-1) == target).float().mean())
    predicted = outputs > 0.5
    true_positives = (predicted & target.bool()).sum()
    return float(2 * true_positives / (predicted.sum() + target.sum()).clamp(min=1))


def fitted_weights(
    outputs: Sequence[torch.Tensor], target: torch.Tensor, objective: str, rounds: int = 20
) -> list[float]:
    """Greedy ensemble selection with replacement (Caruana et al., 2004): `rounds` times, add to the running
    mean whichever member raises the validation score most; a member's weight is how often it was picked, at
    the round that scored best. The first round picks the best member alone, so the result never scores
    below it on this data, and a member that only adds noise gets 0."""
    counts = [0] * len(outputs)
    total = torch.zeros_like(outputs[0])
    best_score, best_counts = float("-inf"), counts
    for picked in range(1, rounds + 1):
        scores = [ensemble_score((total + o) / picked, target, objective) for o in outputs]
        choice = max(range(len(outputs)), key=scores.__getitem__)
        counts[choice] += 1
        total += outputs[choice]
        if scores[choice] > best_score + 1e-9:  # float noise is no improvement
            best_score, best_counts = scores[choice], list(counts)
    return [float(c) for c in best_counts]


def validation_targets(path: str | Path, columns: Columns, card: ModelCard) -> tuple[list[Input], torch.Tensor]:
    """A labelled file read as in training: its inputs, and its targets as the model's outputs are shaped."""
    objective = card.task
    examples = load_sequence_examples(path, columns, objective)  # type: ignore[arg-type]
    inputs: list[Input] = [(e.text, e.text_pair) if e.text_pair is not None else e.text for e in examples]
    if objective == "regression":
        return inputs, torch.tensor([float(e.label) for e in examples])
    labels = card.labels or []
    check_known_labels(examples, labels, path, objective, columns.label)  # type: ignore[arg-type]
    index = {name: i for i, name in enumerate(labels)}
    if objective == "classification":
        return inputs, torch.tensor([index[e.label] for e in examples])
    target = torch.zeros(len(examples), len(index))
    for row, e in enumerate(examples):
        target[row, [index[name] for name in e.label]] = 1.0
    return inputs, target


def save_ensemble(
    out_dir: str | Path,
    members: Sequence[str | Path],
    weighting: Weighting = "mean",
    val_file: str | Path | None = None,
    columns: Columns | None = None,
) -> Path:
    """`fit` needs `val_file`, a labelled file whose `columns` are read as in training."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    folders = [Path(m).resolve() for m in members]
    cards = [ModelCard.load(f) for f in folders]
    if weighting == "fit":
        if val_file is None:
            raise ValueError("weighting `fit` needs a labelled validation file")
        predictors = [SequencePredictor.load(f, card) for f, card in zip(folders, cards, strict=True)]
        inputs, target = validation_targets(val_file, columns or Columns(), cards[0])
        outputs = [p.predict_outputs(inputs) for p in predictors]
        weights = fitted_weights(outputs, target, cards[0].task)
    else:
        weights = member_weights(folders, weighting)
    relative = [os.path.relpath(f, out.resolve()) for f in folders]
    settings = {"members": relative, "weights": weights, "weighting": weighting}
    card = replace(cards[0], shape="ensemble", settings=settings, provenance={"n2m_version": __version__})
    card.save(out)
    EnsemblePredictor.load(out, card)  # fail now, not when serving, if members do not fit together
    return out
