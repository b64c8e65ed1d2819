"""N2N results over the original string: entities (`bio`) or a tag per word (`tags`), and how decoded unit tags
become them (the task's `n2m predict` and the Predictor both use `decode_prediction`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from n2m.shapes.n2n.spans import predicted_spans


@dataclass
class Entity:
    """An entity over the original text: `text == input[start:end]`."""

    text: str
    type: str
    start: int
    end: int
    score: float  # mean probability of the unit tags that make it up


@dataclass
class EntityPrediction:
    entities: list[Entity]


@dataclass
class TaggedWord:
    text: str
    tag: str
    start: int
    end: int
    score: float


@dataclass
class TagPrediction:
    words: list[TaggedWord]


TokenPrediction = EntityPrediction | TagPrediction


def decode_prediction(
    text: str,
    units: Sequence[tuple[int, int]],
    tags: Sequence[int],
    probs: torch.Tensor,
    label_names: Sequence[str],
    scheme: str,
) -> TokenPrediction:
    """Decoded unit tags (-1: unit not seen) and their probabilities `(U, C)` → typed results over `text`."""
    if scheme == "tags":
        words = [
            TaggedWord(
                text[a:b], label_names[t] if t >= 0 else "", a, b, round(float(probs[u, t]), 4) if t >= 0 else 0.0
            )
            for u, ((a, b), t) in enumerate(zip(units, tags, strict=True))
        ]
        return TagPrediction(words)
    entities = []
    for span in predicted_spans(tags, label_names):
        start, end = units[span.start][0], units[span.end - 1][1]
        chosen = [float(probs[u, tags[u]]) for u in range(span.start, span.end) if tags[u] >= 0]
        entities.append(Entity(text[start:end], span.label, start, end, round(sum(chosen) / len(chosen), 4)))
    return EntityPrediction(entities)
