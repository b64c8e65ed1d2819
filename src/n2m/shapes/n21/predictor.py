"""`SequencePredictor`: an exported N21 folder → scores, a class, or labels (the core `Predictor` pipeline).

>>> p = Predictor.from_pretrained("out/korsts")
>>> p.predict([("한 남자가 기타를 치고 있다.", "남자가 기타를 연주한다.")])
[ScorePrediction(score=4.6)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from n2m.core.batching import pad_id
from n2m.core.card import ModelCard
from n2m.core.predictor import Predictor as BasePredictor
from n2m.shapes.n21.encoding import Features, collate_features, encode_texts, feature_length
from n2m.shapes.n21.model import SequenceModel
from n2m.shapes.n21.outputs import OUTPUT_TYPES, Prediction, decode_output

Input = str | tuple[str, str] | list[str] | dict[str, str]


class SequencePredictor(BasePredictor):
    """N21: one text or a pair → a `ScorePrediction`, `ClassPrediction` or `LabelsPrediction`.
    `predict(inputs, threshold=0.5)`: the probability from which a multilabel model gives a label."""

    postprocess_options = frozenset({"threshold"})

    model: SequenceModel | None

    def __init__(
        self, model: SequenceModel | None, tokenizer: PreTrainedTokenizerBase, card: ModelCard, device: str = "cpu"
    ) -> None:
        super().__init__(model, tokenizer, card, device)
        self.output_type = OUTPUT_TYPES[card.task]

    def split_inputs(self, inputs: Sequence[Input]) -> tuple[list[str], list[str] | None]:
        """Texts (and second texts of pairs) from strings, tuples, lists or `{"text": …, "text_pair": …}`."""
        fields = self.card.inputs
        texts: list[str] = []
        pairs: list[str] = []
        for i, item in enumerate(inputs):
            if isinstance(item, dict):
                missing = [k for k in fields if k not in item]
                if missing:
                    raise ValueError(f"input {i}: missing field(s) {missing}; this model takes {fields}")
                parts = [item[k] for k in fields]
            elif isinstance(item, str):
                parts = [item]
            else:
                parts = list(item)
            if len(parts) != len(fields):
                raise ValueError(f"input {i}: expected {len(fields)} text(s), got {len(parts)}")
            if not all(isinstance(p, str) for p in parts):
                raise ValueError(f"input {i}: every text must be a string")
            texts.append(parts[0])
            pairs += parts[1:]
        return texts, pairs if len(fields) == 2 else None

    def preprocess(self, inputs: Sequence[Input]) -> list[Features]:
        texts, pairs = self.split_inputs(inputs)
        pair_encoding = self.card.settings.get("pair_encoding", "cross")
        return encode_texts(self.tokenizer, texts, pairs, self.card.encoding, pair_encoding)

    def token_counts(self, inputs: Sequence[Input]) -> list[int]:
        """Uncut token counts; for a bi-encoder pair, the longer of its two texts (each is cut alone)."""
        texts, pairs = self.split_inputs(inputs)
        prefix = self.card.encoding.text_prefix
        firsts = [prefix + t for t in texts]
        if pairs is None:
            return [len(ids) for ids in self.tokenizer(firsts)["input_ids"]]
        seconds = [prefix + t for t in pairs]
        if self.card.settings.get("pair_encoding", "cross") == "cross":
            return [len(ids) for ids in self.tokenizer(firsts, seconds)["input_ids"]]
        a, b = self.tokenizer(firsts)["input_ids"], self.tokenizer(seconds)["input_ids"]
        return [max(len(x), len(y)) for x, y in zip(a, b, strict=True)]

    def length(self, feature: Features) -> int:
        return feature_length(feature)

    def forward(self, features: list[Features], **options: Any) -> list[torch.Tensor]:
        batch = collate_features(features, pad_id(self.tokenizer))
        batch = {part: {k: v.to(self.device) for k, v in seqs.items()} for part, seqs in batch.items()}
        return list(self.forward_batch(batch).cpu())

    def forward_batch(self, batch: dict[str, dict[str, torch.Tensor]]) -> torch.Tensor:
        """One padded batch → outputs: the PyTorch backend (the ONNX one overrides this)."""
        assert self.model is not None
        return self.model.to_outputs(self.model(batch))

    def postprocess(self, output: torch.Tensor, feature: Features, threshold: float = 0.5) -> Prediction:
        return decode_output(output, self.card.task, self.card.labels, threshold)

    def predict_outputs(self, inputs: Sequence[Input], batch_size: int | None = None) -> torch.Tensor:
        """Raw outputs in input order: scores `(N,)` or probabilities `(N, C)` (what ensembles average)."""
        outputs = self.run(self.preprocess(inputs), batch_size)
        return torch.stack(outputs) if outputs else torch.empty(0)


Predictor = SequencePredictor
