"""Scores for image captions over a whole split: the text metrics of `n2m.shapes.n2m.metrics` (BLEU, chrF, …),
CIDEr-D, the COCO captioning metric (`n2m.shapes.n2m.cider`), and, for generated scenes whose truth is known
(`{split}.scenes.jsonl`), how often a caption names exactly the image's objects (`object_accuracy`) and those
objects with their counts (`count_accuracy`) (`n2m.shapes.n2m.caption_scores`).

CIDEr-D weighs an n-gram by how rare it is across the split's references, so it is computed over the whole
split at once, never per batch. It is reported ×100 (as COCO papers print it: 1.0 → 100.0), beside BLEU and chrF
on their 0-100 scale; unlike them it can pass 100. The accuracies are percentages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from torch import nn

from n2m.shapes.n2m.caption_scores import CaptionVocabulary, object_count_scores, read_scene_objects
from n2m.shapes.n2m.cider import cider_d
from n2m.shapes.n2m.metrics import BleuTokenize, GenerationMetrics, MetricName

CaptionMetricName = Literal["cider", "object_accuracy", "count_accuracy"]
SCENE_METRICS = ("object_accuracy", "count_accuracy")
CAPTION_ONLY = ("cider", *SCENE_METRICS)


class SceneTruth:
    """What each generated image holds ({object: count}, from `scenes` files) and the vocabulary that reads a
    caption back into objects and counts. Images are matched by resolved path."""

    def __init__(self, scenes: Sequence[str], vocabulary: str) -> None:
        self.objects = {p.resolve(): v for f in scenes for p, v in read_scene_objects(f).items()}
        self.vocabulary = CaptionVocabulary.load(vocabulary)

    def of(self, image: str) -> Mapping[str, int]:
        found = self.objects.get(Path(image).resolve())
        if found is None:
            raise ValueError(f"no scene truth for {image}: name its split's scenes file in `model.scenes`")
        return found


class CaptionMetrics(nn.Module):
    """`update(predictions, references, images)` per batch (an image's references are all its captions),
    `compute()` at the end of the split. Predictions are kept as text for the split-wide metrics (this
    process's share under DDP: validation picks the epoch on rank 0's images)."""

    def __init__(
        self,
        names: Sequence[MetricName | CaptionMetricName],
        bleu_tokenize: BleuTokenize = "char",
        truth: SceneTruth | None = None,
    ) -> None:
        super().__init__()
        text = [n for n in names if n not in CAPTION_ONLY]
        self.text = GenerationMetrics(text, bleu_tokenize) if text else None  # type: ignore[arg-type]
        self.split_wide = [n for n in names if n in CAPTION_ONLY]
        if truth is None and any(n in SCENE_METRICS for n in names):
            raise ValueError("object_accuracy / count_accuracy need the scenes' truth: set `model.scenes` (the "
                             "{split}.scenes.jsonl files) and `model.caption_vocabulary`")  # fmt: skip
        self.truth = truth
        self.predictions: list[str] = []
        self.references: list[list[str]] = []
        self.images: list[str] = []

    def update(
        self, predictions: Sequence[str], references: Sequence[Sequence[str]], images: Sequence[str] = ()
    ) -> None:
        if self.text is not None:
            self.text.update(predictions, references)
        if self.split_wide:
            self.predictions += list(predictions)
            self.references += [list(r) for r in references]
            self.images += list(images)

    def compute(self) -> dict[str, float]:
        out = self.text.compute() if self.text is not None else {}
        if "cider" in self.split_wide:
            out["cider"] = 100 * cider_d(self.predictions, self.references) if self.predictions else 0.0
        if self.truth is not None and any(n in SCENE_METRICS for n in self.split_wide):
            truths = [self.truth.of(image) for image in self.images]
            scores = object_count_scores(self.predictions, truths, self.truth.vocabulary)
            out.update(object_accuracy=100 * scores.objects, count_accuracy=100 * scores.exact)
            out = {k: v for k, v in out.items() if k not in SCENE_METRICS or k in self.split_wide}
        return out

    def reset(self) -> None:
        if self.text is not None:
            self.text.reset()
        self.predictions, self.references, self.images = [], [], []
