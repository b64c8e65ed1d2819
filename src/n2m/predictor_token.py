"""N2N results, schema, exporter and `TokenPredictor`: text in, entities (or tagged words) over the original string.

>>> p = Predictor.from_pretrained("out/klue-ner")
>>> p.predict(["경찰은 박씨의 딸(32)과 16명을 입건했다."])[0].entities[0]
Entity(text='경찰', type='OG', start=0, end=2, score=0.98)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerBase

from n2m.data.tokens import TokenExample, collate_units, encode_units, split_units
from n2m.export import save_backbone_files, save_model_weights
from n2m.models.encoder import build_encoder
from n2m.models.token import TokenModel
from n2m.predictor import Predictor
from n2m.schema import SCHEMA_FILE, read_info
from n2m.spans import bio_transitions, decode_units, predicted_spans


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


@dataclass
class TokenSchema:
    """What an exported N2N model is, saved as `n2m.json`."""

    shape: str
    scheme: str
    unit: str
    label_names: list[str]
    backbone: str
    max_length: int = 128
    constrained_decoding: bool = True
    inputs: list[str] = field(default_factory=lambda: ["text"])
    n2m_version: str = ""

    @classmethod
    def from_hparams(cls, model: Mapping[str, Any], data: Mapping[str, Any]) -> TokenSchema:
        from n2m import __version__

        return cls(
            shape="N2N",
            scheme=model["scheme"],
            unit=model.get("unit") or "word",
            label_names=list(model["label_names"]),
            backbone=model["backbone"],
            max_length=data.get("max_length", 128),
            constrained_decoding=bool(model.get("constrained_decoding", True)),
            n2m_version=__version__,
        )

    def save(self, folder: str | Path) -> None:
        text = json.dumps(asdict(self), ensure_ascii=False, indent=2) + "\n"
        Path(folder, SCHEMA_FILE).write_text(text, encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> TokenSchema:
        return cls(**read_info(folder))


def export_token(ckpt: dict, out: Path) -> None:
    model_hparams = ckpt["hyper_parameters"]
    data_hparams = ckpt.get("datamodule_hyper_parameters", {})
    save_backbone_files(model_hparams.get("backbone_dir") or model_hparams["backbone"], out)
    save_model_weights(ckpt, out)
    TokenSchema.from_hparams(model_hparams, data_hparams).save(out)


class TokenPredictor(Predictor):
    """N2N: texts → entities (`bio`) or a tag per word (`tags`), batched longest first."""

    def __init__(
        self, model: TokenModel, tokenizer: PreTrainedTokenizerBase, schema: TokenSchema, device: str = "cpu"
    ) -> None:
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.schema = schema  # type: ignore[assignment]
        self.device = device
        self.transitions = bio_transitions(schema.label_names) if schema.scheme == "bio" else None

    @classmethod
    def _load(cls, folder: Path, device: str) -> TokenPredictor:
        schema = TokenSchema.load(folder)
        model = TokenModel(build_encoder(AutoConfig.from_pretrained(folder), pretrained=False), len(schema.label_names))
        model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
        return cls(model, AutoTokenizer.from_pretrained(folder), schema, device)

    def _examples(self, inputs: Sequence[Any]) -> list[TokenExample]:
        examples = []
        for i, item in enumerate(inputs):
            text = item.get("text") if isinstance(item, dict) else item
            if not isinstance(text, str):
                raise ValueError(
                    f"input {i}: expected a text (a string, or {{'text': ...}}), got {type(item).__name__}"
                )
            examples.append(TokenExample(text, tuple(split_units(text, self.schema.unit))))  # type: ignore[arg-type]
        return examples

    @torch.inference_mode()
    def predict_units(
        self, examples: Sequence[TokenExample], batch_size: int = 32, constrained: bool | None = None
    ) -> list[tuple[list[int], torch.Tensor]]:
        """(decoded tag per unit, probabilities `(U, C)`) per example, in input order."""
        constrained = self.schema.constrained_decoding if constrained is None else constrained
        transitions = self.transitions if constrained else None
        features = encode_units(self.tokenizer, examples, self.schema.max_length)
        order = sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))
        results: list[Any] = [None] * len(features)
        pad = self.tokenizer.pad_token_id or 0
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = collate_units([features[i] for i in chunk], None, pad)
            probs = self.model({k: v.to(self.device) for k, v in batch.items()}).float().softmax(-1).cpu()
            covered = batch["unit_token"] >= 0
            for row, i in enumerate(chunk):
                n = len(features[i]["unit_token"])
                results[i] = (decode_units(probs[row, :n].log(), covered[row, :n], transitions), probs[row, :n])
        return results

    def predict(
        self, inputs: Sequence[Any], batch_size: int = 32, constrained: bool | None = None, **options: Any
    ) -> list[TokenPrediction]:
        examples = self._examples(inputs)
        decoded = self.predict_units(examples, batch_size, constrained)
        return [
            decode_prediction(ex.text, ex.units, tags, probs, self.schema.label_names, self.schema.scheme)
            for ex, (tags, probs) in zip(examples, decoded, strict=True)
        ]
