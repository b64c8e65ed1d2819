"""`Predictor`: an exported model folder → typed results, without Lightning and without pickle.

Every shape's predictor is one pipeline, `preprocess` → `forward` (one batch) → `postprocess`; the base owns
loading, batching longest-first with results in input order, `torch.inference_mode` and the device.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch

from n2m.core.card import ModelCard
from n2m.registry import get_shape, predictor_class

Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16")


def precision_argument(parser: argparse.ArgumentParser) -> None:
    """`--precision`, as every command that runs an exported model takes it (`Predictor.set_precision`)."""
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="bf16: the torch model under bfloat16 autocast, faster on CPUs with AVX-512 BF16 "
                        "or AMX; sentence vectors stay within cosine 0.999 of fp32")  # fmt: skip


class Predictor:
    """Base of every shape's predictor. Subclasses implement `preprocess`, `length`, `forward` and `postprocess`,
    and name their result type (`output_type`) and the options each stage takes."""

    default_batch_size: ClassVar[int] = 64
    output_type: Any = dict  # the result dataclass, documented in the server's OpenAPI schema
    forward_options: ClassVar[frozenset[str]] = frozenset()
    postprocess_options: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_pretrained(
        cls,
        folder: str | Path,
        device: str = "cpu",
        backend: str = "torch",
        precision: Precision = "fp32",
        **options: Any,
    ) -> Predictor:
        """The predictor of the folder's shape (found in `n2m.registry`). `backend="onnx"` runs the folder's ONNX
        file (written by `n2m export --onnx`) with ONNX Runtime; `options` go to that backend's `load`
        (`onnx_file="model.int8.onnx"`, `threads=2`). `precision`: see `set_precision`."""
        folder = Path(folder)
        card = ModelCard.load(folder)
        found = predictor_class(card.shape, backend)
        if not issubclass(found, cls):
            raise TypeError(f"{folder} holds an {card.shape} model, which {cls.__name__} does not load")
        predictor = found.load(folder, card, device, **options)
        predictor.set_precision(precision)
        return predictor

    def __init__(self, model: torch.nn.Module | None, tokenizer: Any, card: ModelCard, device: str = "cpu") -> None:
        self.model = model.eval().to(device) if model is not None else None  # None: another runtime runs it
        self.tokenizer = tokenizer
        self.card = card
        self.device = device
        self.precision: Precision = "fp32"

    def set_precision(self, precision: Precision) -> None:
        """`bf16`: the torch model runs under `torch.autocast` in bfloat16 (matrix products in bf16, layer norms,
        softmax and outputs in fp32); the weights stay fp32. On a CPU with AVX-512 BF16 or AMX (and on GPUs) it
        is faster; sentence vectors stay within cosine 0.999 of fp32 (benchmarks/retrieval_vs_st.py measures
        every test sentence). `fp32`: the model as trained."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision is one of {list(PRECISIONS)}, not {precision!r}")
        if precision != "fp32" and self.model is None:
            raise ValueError(f"precision {precision} is the torch backend's; an ONNX graph runs in its own "
                             "(model.onnx fp32, model.int8.onnx int8)")  # fmt: skip
        self.precision = precision

    def autocast(self) -> AbstractContextManager:
        """The context every forward pass runs in: bf16 autocast where `precision` asks it, else nothing."""
        device = torch.device(self.device).type
        return torch.autocast(device, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    @classmethod
    def load(cls, folder: Path, card: ModelCard, device: str = "cpu") -> Predictor:
        """The folder's model (the shape's model class loads itself) and tokenizer."""
        from transformers import AutoTokenizer

        model = get_shape(card.shape).part("model").load(folder, card)
        return cls(model, AutoTokenizer.from_pretrained(folder), card, device)

    @property
    def info(self) -> dict[str, Any]:
        """What the model is: the folder's `n2m.json` as this n2m reads it."""
        return self.card.to_dict()

    # ---- the pipeline ---------------------------------------------------------------------------------
    def preprocess(self, inputs: Sequence[Any]) -> list[Any]:
        """Inputs → one feature per input (checked: a bad input raises `ValueError` naming its index)."""
        raise NotImplementedError

    def texts(self, inputs: Sequence[Any]) -> list[str]:
        """One text per input, given as a string or as `{"text": ...}` (models of one input field)."""
        texts = []
        for i, item in enumerate(inputs):
            text = item.get("text") if isinstance(item, dict) else item
            if not isinstance(text, str):
                kind = type(item).__name__
                raise ValueError(f"input {i}: expected a text (a string, or {{'text': ...}}), got {kind}")
            texts.append(text)
        return texts

    def token_counts(self, inputs: Sequence[Any]) -> list[int]:
        """How many tokens each input is before it is cut to the card's `max_length` (start, end and prefix
        included): more than `max_length` means the model reads only the start of it."""
        prefix = self.card.encoding.text_prefix
        encoded = self.tokenizer([prefix + text for text in self.texts(inputs)])["input_ids"]
        return [len(ids) for ids in encoded]

    def length(self, feature: Any) -> int:
        """How long a feature is, to batch similar lengths together."""
        raise NotImplementedError

    def forward(self, features: list[Any], **options: Any) -> list[Any]:
        """One batch of features → one raw output per feature."""
        raise NotImplementedError

    def postprocess(self, output: Any, feature: Any, **options: Any) -> Any:
        return output

    def predict(self, inputs: Sequence[Any], batch_size: int | None = None, **options: Any) -> list[Any]:
        """One result per input, in input order. `options` go to the stage that takes them (e.g. a
        classifier's `threshold`, a generator's `num_beams`); an unknown one is an error."""
        known = self.forward_options | self.postprocess_options
        unknown = set(options) - known
        if unknown:
            # a ValueError, as for a bad input: the server answers it with a 422, not a 500
            raise ValueError(f"unknown option(s) {sorted(unknown)}; {type(self).__name__} takes {sorted(known)}")
        features = self.preprocess(inputs)
        forward = {k: v for k, v in options.items() if k in self.forward_options}
        outputs = self.run(features, batch_size, **forward)
        post = {k: v for k, v in options.items() if k in self.postprocess_options}
        return [self.postprocess(o, f, **post) for o, f in zip(outputs, features, strict=True)]

    @torch.inference_mode()
    def run(self, features: list[Any], batch_size: int | None = None, **options: Any) -> list[Any]:
        """`forward` over batches of similar length (longest first), outputs back in input order."""
        size = batch_size or self.default_batch_size
        order = sorted(range(len(features)), key=lambda i: -self.length(features[i]))
        outputs: list[Any] = [None] * len(features)
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            with self.autocast():
                batch_outputs = self.forward([features[i] for i in chunk], **options)
            for i, output in zip(chunk, batch_outputs, strict=True):
                outputs[i] = output
        return outputs
