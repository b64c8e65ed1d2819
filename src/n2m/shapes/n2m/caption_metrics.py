"""Scores for image captions over a whole split: the text metrics of `n2m.shapes.n2m.metrics` (BLEU, chrF, …) and
CIDEr-D, the COCO captioning metric (`n2m.shapes.n2m.cider`), which weighs an n-gram by how rare it is across
the split's references, so it is computed over the whole split at once, never per batch.

CIDEr-D is reported ×100 (COCO's papers do the same: 1.0 → 100.0), beside BLEU and chrF on their 0-100 scale;
unlike them it can pass 100.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import nn

from n2m.shapes.n2m.metrics import BleuTokenize, GenerationMetrics, MetricName

CaptionMetricName = Literal["cider"]
CAPTION_ONLY = ("cider",)


class CaptionMetrics(nn.Module):
    """`update(predictions, references)` per batch (an image's references are all its captions), `compute()` at
    the end of the split. Predictions are kept as text for the split-wide metrics (this process's share under
    DDP: validation picks the epoch on rank 0's images)."""

    def __init__(self, names: Sequence[MetricName | CaptionMetricName], bleu_tokenize: BleuTokenize = "char") -> None:
        super().__init__()
        text = [n for n in names if n not in CAPTION_ONLY]
        self.text = GenerationMetrics(text, bleu_tokenize) if text else None  # type: ignore[arg-type]
        self.split_wide = [n for n in names if n in CAPTION_ONLY]
        self.predictions: list[str] = []
        self.references: list[list[str]] = []

    def update(self, predictions: Sequence[str], references: Sequence[Sequence[str]]) -> None:
        if self.text is not None:
            self.text.update(predictions, references)
        if self.split_wide:
            self.predictions += list(predictions)
            self.references += [list(r) for r in references]

    def compute(self) -> dict[str, float]:
        out = self.text.compute() if self.text is not None else {}
        if "cider" in self.split_wide:
            out["cider"] = 100 * cider_d(self.predictions, self.references)
        return out

    def reset(self) -> None:
        if self.text is not None:
            self.text.reset()
        self.predictions, self.references = [], []


def cider_d(predictions: list[str], references: list[list[str]]) -> float:
    """CIDEr-D of the split (0-10 scale, as COCO's code gives it)."""
    if not predictions:
        return 0.0
    from n2m.shapes.n2m import cider  # the COCO implementation, kept in the repo

    return float(cider.cider_d(predictions, references))
