"""N2N metrics as torchmetrics `Metric`s: entity-level P/R/F1 (seqeval's default mode) and tag accuracy.

Their states are count tensors summed across processes, so under DDP every rank reports the scores of the
whole evaluation set (entity F1 is not an average of per-rank F1s).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torchmetrics import Metric

from n2m.shapes.n2n.spans import Span


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(num))


class EntityScores(Metric):
    """Exact-span, exact-type entity precision / recall / F1, micro over all types and per type.

    `update(predicted, gold)` takes, per sentence, the predicted and gold spans (any hashable `(start, end,
    type)`); a predicted entity counts as correct only when its boundaries and type both match a gold one,
    which is what seqeval's default mode scores from BIO tags (see `spans.bio_to_spans`).
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, types: Sequence[str], per_type: bool = True) -> None:
        super().__init__()
        self.types = list(types)
        self.index = {t: i for i, t in enumerate(self.types)}
        self.per_type = per_type
        for name in ("correct", "predicted", "gold"):
            self.add_state(name, default=torch.zeros(len(self.types), dtype=torch.float64), dist_reduce_fx="sum")

    def _count(self, spans: Iterable[Span], into: torch.Tensor) -> None:
        for span in spans:
            if span.label not in self.index:
                raise ValueError(f"entity type {span.label!r} is not one of {self.types}")
            into[self.index[span.label]] += 1

    def update(self, predicted: Sequence[Iterable[Span]], gold: Sequence[Iterable[Span]]) -> None:
        if len(predicted) != len(gold):
            raise ValueError(f"{len(predicted)} predicted sentences but {len(gold)} gold ones")
        for pred, true in zip(predicted, gold, strict=True):
            pred, true = set(pred), set(true)
            self._count(pred, self.predicted)
            self._count(true, self.gold)
            self._count(pred & true, self.correct)

    def compute(self) -> dict[str, torch.Tensor]:
        correct, predicted, gold = self.correct.sum(), self.predicted.sum(), self.gold.sum()
        precision, recall = _ratio(correct, predicted), _ratio(correct, gold)
        scores = {"precision": precision, "recall": recall, "f1": _ratio(2 * precision * recall, precision + recall)}
        if self.per_type:
            p, r = _ratio(self.correct, self.predicted), _ratio(self.correct, self.gold)
            f1 = _ratio(2 * p * r, p + r)
            for i, name in enumerate(self.types):
                scores[f"f1_{name}"] = f1[i]
        return {k: v.float() for k, v in scores.items()}


class TagAccuracy(Metric):
    """Share of units (words) whose predicted tag is exactly the gold one; a unit the model did not see
    (cut off by `max_length`) or whose gold tag never appeared in training counts as wrong."""

    full_state_update = False
    higher_is_better = True

    def __init__(self) -> None:
        super().__init__()
        self.add_state("correct", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, predicted: torch.Tensor, gold: torch.Tensor, mask: torch.Tensor) -> None:
        """`predicted` and `gold` are tag indices (-1: none), `mask` marks the units to score."""
        self.correct += ((predicted == gold) & (gold >= 0) & mask).sum()
        self.total += mask.sum()

    def compute(self) -> torch.Tensor:
        return _ratio(self.correct, self.total).float()
