"""`Predictor`: an exported model folder → typed results, without Lightning and without pickle.

`Predictor.from_pretrained(folder)` reads the folder's `n2m.json` and returns the predictor of its
shape (`SequencePredictor` for N21), found through `n2m.registry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerBase

from n2m.data.encoding import collate_features, encode_texts, feature_length
from n2m.models.encoder import build_encoder
from n2m.models.sequence import SequenceModel
from n2m.outputs import Prediction, decode_outputs
from n2m.schema import TaskSchema, read_info

Input = str | tuple[str, str] | list[str] | dict[str, str]


class Predictor:
    """Base of every shape's predictor: `schema`, `from_pretrained`, `predict(inputs) -> list[result]`."""

    schema: TaskSchema

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, device: str = "cpu", backend: str = "torch", onnx_file: str = "model.onnx"
    ) -> Predictor:
        """`backend="onnx"` runs the folder's `onnx_file` (written by `n2m export --onnx`) with ONNX Runtime."""
        if backend == "onnx":
            from n2m.onnx_export import load_onnx_predictor

            return load_onnx_predictor(Path(folder), onnx_file)
        if backend != "torch":
            raise ValueError(f"unknown backend {backend!r}: use 'torch' or 'onnx'")
        if cls is not Predictor:
            return cls._load(Path(folder), device)
        from n2m.registry import get_shape, load_object

        name = read_info(folder).get("shape", "N21")
        if name == "ensemble":
            from n2m.ensemble import EnsemblePredictor

            return EnsemblePredictor._load(Path(folder), device)
        shape = get_shape(name)
        return load_object(shape.predictor)._load(Path(folder), device)

    @classmethod
    def _load(cls, folder: Path, device: str) -> Predictor:
        raise NotImplementedError

    @property
    def info(self) -> dict[str, Any]:
        """What the model is (the folder's `n2m.json`): shape, inputs, labels, backbone, version."""
        return asdict(self.schema)

    def predict(self, inputs: Sequence[Any], batch_size: int = 64, **options: Any) -> list[Any]:
        raise NotImplementedError


class SequencePredictor(Predictor):
    """N21. Batches inputs (longest first, so padding is small), runs the model, returns typed results.

    >>> p = Predictor.from_pretrained("out/korsts")
    >>> p.predict([("한 남자가 기타를 치고 있다.", "남자가 기타를 연주한다.")])
    [ScorePrediction(score=4.6)]
    """

    def __init__(
        self, model: SequenceModel, tokenizer: PreTrainedTokenizerBase, schema: TaskSchema, device: str = "cpu"
    ) -> None:
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.schema = schema
        self.device = device

    @classmethod
    def _load(cls, folder: Path, device: str) -> SequencePredictor:
        schema = TaskSchema.load(folder)
        encoder = build_encoder(AutoConfig.from_pretrained(folder), pretrained=False)
        model = SequenceModel(
            encoder,
            schema.objective,  # type: ignore[arg-type]
            len(schema.label_names or [None]),
            schema.encoding.pair_encoding,
            schema.pooling,  # type: ignore[arg-type]
            score_range=tuple(schema.score_range) if schema.score_range else (0.0, 1.0),
        )
        model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
        return cls(model, AutoTokenizer.from_pretrained(folder), schema, device)

    def _split(self, inputs: Sequence[Input]) -> tuple[list[str], list[str] | None]:
        pair = len(self.schema.inputs) == 2
        texts: list[str] = []
        pairs: list[str] = []
        for i, item in enumerate(inputs):
            if isinstance(item, dict):
                missing = [k for k in self.schema.inputs if k not in item]
                if missing:
                    raise ValueError(f"input {i}: missing field(s) {missing}; this model takes {self.schema.inputs}")
                parts = [item[k] for k in self.schema.inputs]
            elif isinstance(item, str):
                parts = [item]
            else:
                parts = list(item)
            if len(parts) != len(self.schema.inputs):
                raise ValueError(f"input {i}: expected {len(self.schema.inputs)} text(s), got {len(parts)}")
            if not all(isinstance(p, str) for p in parts):
                raise ValueError(f"input {i}: every text must be a string")
            texts.append(parts[0])
            if pair:
                pairs.append(parts[1])
        return texts, pairs if pair else None

    @torch.inference_mode()
    def predict_outputs(self, inputs: Sequence[Input], batch_size: int = 64) -> torch.Tensor:
        """Raw outputs in input order: scores `(N,)` or probabilities `(N, C)`."""
        texts, pairs = self._split(inputs)
        features = encode_texts(self.tokenizer, texts, pairs, self.schema.encoding)
        order = sorted(range(len(features)), key=lambda i: -feature_length(features[i]))
        chunks: list[torch.Tensor] = []
        for start in range(0, len(order), batch_size):
            batch = collate_features([features[i] for i in order[start : start + batch_size]], self.pad_id)
            batch = {part: {k: v.to(self.device) for k, v in seqs.items()} for part, seqs in batch.items()}
            chunks.append(self._run(batch).cpu())
        if not chunks:
            return torch.empty(0)
        outputs = torch.cat(chunks)
        restored = torch.empty_like(outputs)
        restored[torch.tensor(order)] = outputs
        return restored

    def _run(self, batch: dict[str, dict[str, torch.Tensor]]) -> torch.Tensor:
        """One padded batch → outputs; the ONNX predictor overrides this and nothing else."""
        return self.model.to_outputs(self.model(batch))

    def predict(self, inputs: Sequence[Input], batch_size: int = 64, **options: Any) -> list[Prediction]:
        return decode_outputs(self.predict_outputs(inputs, batch_size), self.schema, **options)

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
