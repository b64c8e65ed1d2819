"""`TokenPredictor`: text in, entities (or tagged words) over the original string, from an exported folder.

>>> p = Predictor.from_pretrained("out/klue-ner")
>>> p.predict(["경찰은 박씨의 딸(32)과 16명을 입건했다."])[0].entities[0]
Entity(text='경찰', type='OG', start=0, end=2, score=0.98)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from transformers import PreTrainedTokenizerBase

from n2m.core.batching import pad_id
from n2m.core.card import ModelCard
from n2m.core.predictor import Predictor as BasePredictor
from n2m.shapes.n2n.encoding import Features, collate_units, encode_units
from n2m.shapes.n2n.examples import TokenExample, split_units
from n2m.shapes.n2n.model import TokenModel
from n2m.shapes.n2n.outputs import EntityPrediction, TagPrediction, TokenPrediction, decode_prediction
from n2m.shapes.n2n.spans import bio_transitions, decode_units

UnitTags = tuple[list[int], torch.Tensor]  # decoded tag per unit (-1: unit not seen), probabilities `(U, C)`


class UnitFeature(NamedTuple):
    """One input as the model reads it: the sentence and its encoding."""

    example: TokenExample
    encoded: Features


class TokenPredictor(BasePredictor):
    """N2N: texts → entities (`bio`) or a tag per word (`tags`), batched longest first.

    `predict(texts, constrained=False)` decodes each unit's argmax instead of the constrained BIO path."""

    default_batch_size = 32
    forward_options = frozenset({"constrained"})
    output_type: Any = EntityPrediction  # TagPrediction for a `tags` model (set per instance)

    def __init__(
        self, model: TokenModel, tokenizer: PreTrainedTokenizerBase, card: ModelCard, device: str = "cpu"
    ) -> None:
        super().__init__(model, tokenizer, card, device)
        self.labels = list(card.labels or [])
        self.scheme = card.task
        self.unit = card.settings.get("unit", "word")
        self.constrained_decoding = bool(card.settings.get("constrained_decoding", True))
        self.transitions = bio_transitions(self.labels) if self.scheme == "bio" else None
        self.output_type = TagPrediction if self.scheme == "tags" else EntityPrediction

    # ---- the pipeline ---------------------------------------------------------------------------------
    def preprocess(self, inputs: Sequence[Any]) -> list[UnitFeature]:
        return self.encode([TokenExample(text, tuple(split_units(text, self.unit))) for text in self.texts(inputs)])

    def encode(self, examples: Sequence[TokenExample]) -> list[UnitFeature]:
        """Sentences whose units are given (e.g. read from a CoNLL file) → features."""
        encoded = encode_units(self.tokenizer, examples, self.card.encoding)
        return [UnitFeature(ex, f) for ex, f in zip(examples, encoded, strict=True)]

    def length(self, feature: UnitFeature) -> int:
        return len(feature.encoded["input_ids"])

    def forward(self, features: list[UnitFeature], constrained: bool | None = None) -> list[UnitTags]:
        constrained = self.constrained_decoding if constrained is None else constrained
        transitions = self.transitions if constrained else None
        batch = collate_units([f.encoded for f in features], None, pad_id(self.tokenizer))
        probs = self.model({k: v.to(self.device) for k, v in batch.items()}).float().softmax(-1).cpu()
        covered = batch["unit_token"] >= 0
        outputs = []
        for row, feature in enumerate(features):
            n = len(feature.encoded["unit_token"])
            outputs.append((decode_units(probs[row, :n].log(), covered[row, :n], transitions), probs[row, :n]))
        return outputs

    def postprocess(self, output: UnitTags, feature: UnitFeature) -> TokenPrediction:
        tags, probs = output
        ex = feature.example
        return decode_prediction(ex.text, ex.units, tags, probs, self.labels, self.scheme)

    def predict_units(
        self, examples: Sequence[TokenExample], batch_size: int | None = None, constrained: bool | None = None
    ) -> list[UnitTags]:
        """(decoded tag per unit, probabilities `(U, C)`) per example, in input order: for sentences whose units
        a file gives (scoring a test split) rather than raw texts."""
        return self.run(self.encode(examples), batch_size, constrained=constrained)


Predictor = TokenPredictor
