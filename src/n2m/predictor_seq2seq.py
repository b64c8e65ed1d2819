"""`Seq2SeqPredictor`: an exported N2M folder → generated text, in batches or streamed token by token.

>>> p = Predictor.from_pretrained("out/ko-en")
>>> p.predict(["나는 학생이다."])
[GeneratedText(text='I am a student.')]
>>> for piece in p.stream("나는 학생이다."):   # what a server sends as server-sent events
...     print(piece, end="", flush=True)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from n2m.data.seq2seq import encode_sources, pad_sources
from n2m.export_seq2seq import Seq2SeqSchema
from n2m.generation import GenerationOptions, as_options, decode, generate_ids, stream_text
from n2m.predictor import Predictor

Source = str | dict[str, str]


@dataclass
class GeneratedText:
    text: str


class Seq2SeqPredictor(Predictor):
    """N2M. `predict` batches inputs (longest first, so padding is small) and returns one text per input;
    `stream` yields the text of one input piece by piece as tokens are generated. Decoding follows the
    recipe (`n2m.json`'s `generation`) unless a call overrides it: `predict(texts, num_beams=4)`."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        schema: Seq2SeqSchema,
        device: str = "cpu",
    ) -> None:
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.schema = schema  # type: ignore[assignment]
        self.device = device
        self.generation: GenerationOptions = as_options(schema.generation)

    @classmethod
    def _load(cls, folder: Path, device: str) -> Seq2SeqPredictor:
        schema = Seq2SeqSchema.load(folder)
        model = AutoModelForSeq2SeqLM.from_pretrained(folder)
        return cls(model, AutoTokenizer.from_pretrained(folder), schema, device)

    def options(self, **overrides: Any) -> GenerationOptions:
        return self.generation.override(**overrides)

    def _texts(self, inputs: Sequence[Source]) -> list[str]:
        texts = []
        for i, item in enumerate(inputs):
            text = item.get("text") if isinstance(item, dict) else item
            if not isinstance(text, str):
                raise ValueError(f"input {i}: expected a text (or {{'text': ...}}), got {type(item).__name__}")
            texts.append(text)
        return texts

    def _batch(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        ids = encode_sources(self.tokenizer, texts, self.schema.max_source_length, self.schema.source_prefix)
        batch = pad_sources(ids, self.pad_id)
        return {k: v.to(self.device) for k, v in batch.items()}

    def predict(self, inputs: Sequence[Source], batch_size: int = 16, **overrides: Any) -> list[GeneratedText]:
        texts = self._texts(inputs)
        options = self.options(**overrides)
        lengths = [len(t) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        outputs: dict[int, str] = {}
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = self._batch([texts[i] for i in chunk])
            ids = generate_ids(self.model, batch["input_ids"], batch["attention_mask"], options)
            outputs.update({i: decode(self.tokenizer, row) for i, row in zip(chunk, ids, strict=True)})
        return [GeneratedText(outputs[i]) for i in range(len(texts))]

    def stream(self, input: Source, **overrides: Any) -> Iterator[str]:
        """The output of one input as it is generated: each item is the text one more token adds, and the
        items joined are exactly `predict([input])[0].text` (with the same options)."""
        (text,) = self._texts([input])
        batch = self._batch([text])
        yield from stream_text(
            self.model, self.tokenizer, batch["input_ids"], batch["attention_mask"], self.options(**overrides)
        )

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
