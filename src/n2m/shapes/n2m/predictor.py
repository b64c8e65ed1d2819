"""`Seq2SeqPredictor`: an exported N2M folder → generated text, in batches or streamed token by token.

>>> p = Predictor.from_pretrained("out/ko-en")
>>> p.predict(["나는 학생이다."])
[GeneratedText(text='I am a student.')]
>>> for piece in p.stream("나는 학생이다."):   # what a server sends as server-sent events
...     print(piece, end="", flush=True)

A captioner (a card whose inputs are `["image"]`) takes images instead: a path, the file's bytes, a PIL image or
`{"image": ...}`, read and checked by `n2m.shapes.n2m.images` (`image_limits`) exactly as training read them.
>>> Predictor.from_pretrained("out/ko-caption").predict(["cat.png"])
[GeneratedText(text='왼쪽에 고양이 한 마리가 있다.')]
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
from n2m.shapes.n2m.generation import GenerationOptions, as_options, decode, generate_from, stream_from
from n2m.shapes.n2m.images import ImageLimits, ImageOptions, ImageSource, normalize, read_pixels
from n2m.shapes.n2m.model import Seq2SeqModel
from n2m.shapes.n2m.outputs import GeneratedText
from n2m.shapes.n2m.vision import is_captioner

Source = str | dict[str, Any] | ImageSource


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
        # a captioner's image reading, as in training; `image_limits` is what an image may be (the server's too)
        self.image = ImageOptions.from_card(card.settings.get("image") or {}) if is_captioner(card) else None
        self.image_limits = ImageLimits()

    @classmethod
    def load(cls, folder: Path, card: ModelCard, device: str = "cpu") -> Seq2SeqPredictor:
        model = Seq2SeqModel.load(folder, card)
        return cls(model.net, AutoTokenizer.from_pretrained(folder), card, device)

    def options(self, **overrides: Any) -> GenerationOptions:
        """The recipe's decoding with this call's changes (an unknown option is a `ValueError`)."""
        return self.generation.override(**overrides)

    # ---- the pipeline -------------------------------------------------------------------------------
    def preprocess(self, inputs: Sequence[Source]) -> list[Any]:
        """Texts (or `{"text": ...}`) → source ids, prefixed and cut as in training; a captioner's images →
        `uint8` pixels (a bad image raises `ImageError`, a `ValueError`, naming its position)."""
        if self.image is not None:
            return [self.read_image(i, item) for i, item in enumerate(inputs)]
        texts = self.texts(inputs)
        return encode_sources(self.tokenizer, texts, self.card.encoding) if texts else []

    def read_image(self, position: int, item: Source) -> torch.Tensor:
        assert self.image is not None
        try:
            return read_pixels(item, self.image, self.image_limits)  # type: ignore[arg-type]
        except ValueError as err:
            err.args = (f"input {position}: {err}",)
            raise

    def token_counts(self, inputs: Sequence[Any]) -> list[int]:
        """Images are never cut: a captioner reports no lengths (the server's `truncated` stays empty)."""
        return [0] * len(inputs) if self.image is not None else super().token_counts(inputs)

    def length(self, feature: Any) -> int:
        return 1 if self.image is not None else len(feature)

    def collate(self, features: Sequence[Any]) -> dict[str, torch.Tensor]:
        """A padded batch of source ids (or a captioner's normalized images) on the predictor's device."""
        if self.image is not None:
            return {"pixel_values": normalize(torch.stack(list(features)), self.image).to(self.device)}
        batch = pad_sources(features, pad_id(self.tokenizer))
        return {k: v.to(self.device) for k, v in batch.items()}

    def forward(self, features: list[Any], **options: Any) -> list[str]:
        ids = generate_from(self.model, self.collate(features), self.options(**options))
        return [decode(self.tokenizer, row) for row in ids]

    def postprocess(self, output: str, feature: Any, **options: Any) -> GeneratedText:
        return GeneratedText(output)

    def stream(self, input: Source, **overrides: Any) -> Iterator[str]:
        """The output of one input as it is generated: each item is the text one more token adds, and the
        items joined are exactly `predict([input])[0].text` (with the same options)."""
        batch = self.collate(self.preprocess([input]))
        yield from stream_from(self.model, self.tokenizer, batch, self.options(**overrides), self.autocast)


Predictor = Seq2SeqPredictor
