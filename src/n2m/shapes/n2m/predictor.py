"""`Seq2SeqPredictor`: an exported N2M folder → generated text, in batches or streamed token by token.

>>> p = Predictor.from_pretrained("out/ko-en")
>>> p.predict(["나는 학생이다."])
[GeneratedText(text='I am a student.')]
>>> for piece in p.stream("나는 학생이다."):   # what a server sends as server-sent events
...     print(piece, end="", flush=True)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, ClassVar

import torch
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from n2m.core.batching import pad_id
from n2m.core.card import ModelCard
from n2m.core.predictor import Predictor as BasePredictor
from n2m.shapes.n2m.encoding import encode_sources, pad_sources
from n2m.shapes.n2m.generation import GenerationOptions, as_options, decode, generate_ids, stream_text
from n2m.shapes.n2m.model import Seq2SeqModel
from n2m.shapes.n2m.outputs import GeneratedText

Source = str | dict[str, str]


class Seq2SeqPredictor(BasePredictor):
    """N2M. `predict` batches inputs (longest first, so padding is small) and returns one text per input;
    `stream` yields the text of one input piece by piece as tokens are generated. Decoding follows the
    recipe (the card's `settings.generation`) unless a call overrides it: `predict(texts, num_beams=4)`."""

    default_batch_size: ClassVar[int] = 16
    output_type = GeneratedText
    forward_options: ClassVar[frozenset[str]] = frozenset(f.name for f in fields(GenerationOptions))

    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, card: ModelCard, device: str = "cpu"
    ) -> None:
        super().__init__(model, tokenizer, card, device)
        self.generation: GenerationOptions = as_options(card.settings.get("generation"))

    @classmethod
    def load(cls, folder: Path, card: ModelCard, device: str = "cpu") -> Seq2SeqPredictor:
        model = Seq2SeqModel.load(folder, card)
        return cls(model.net, AutoTokenizer.from_pretrained(folder), card, device)

    def options(self, **overrides: Any) -> GenerationOptions:
        """The recipe's decoding with this call's changes (an unknown option is a `ValueError`)."""
        return self.generation.override(**overrides)

    # ---- the pipeline -------------------------------------------------------------------------------
    def preprocess(self, inputs: Sequence[Source]) -> list[list[int]]:
        """Texts (or `{"text": ...}`) → source ids, prefixed and cut as in training."""
        texts = self.texts(inputs)
        return encode_sources(self.tokenizer, texts, self.card.encoding) if texts else []

    def length(self, feature: list[int]) -> int:
        return len(feature)

    def collate(self, features: Sequence[list[int]]) -> dict[str, torch.Tensor]:
        """A padded batch of source ids on the predictor's device."""
        batch = pad_sources(features, pad_id(self.tokenizer))
        return {k: v.to(self.device) for k, v in batch.items()}

    def forward(self, features: list[list[int]], **options: Any) -> list[str]:
        batch = self.collate(features)
        ids = generate_ids(self.model, batch["input_ids"], batch["attention_mask"], self.options(**options))
        return [decode(self.tokenizer, row) for row in ids]

    def postprocess(self, output: str, feature: list[int], **options: Any) -> GeneratedText:
        return GeneratedText(output)

    def stream(self, input: Source, **overrides: Any) -> Iterator[str]:
        """The output of one input as it is generated: each item is the text one more token adds, and the
        items joined are exactly `predict([input])[0].text` (with the same options)."""
        batch = self.collate(self.preprocess([input]))
        yield from stream_text(
            self.model, self.tokenizer, batch["input_ids"], batch["attention_mask"], self.options(**overrides)
        )


Predictor = Seq2SeqPredictor
