"""Tokenization and batching for N21, shared by the DataModule and the Predictor so both see the same ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from transformers import PreTrainedTokenizerBase

PairEncoding = Literal["cross", "bi"]
Features = dict[str, dict[str, list[int]]]  # {"a": {"input_ids": [...], ...}, "b": {...}} (b for bi-encoders)


@dataclass(frozen=True)
class EncodingSpec:
    """How text becomes ids. Saved in `n2m.json` so a served model tokenizes exactly as in training."""

    pair_encoding: PairEncoding = "cross"
    max_length: int = 128
    text_prefix: str = ""  # e5 was trained with "query: " / "passage: " prefixes


def _rows(encoded: Any, n: int) -> list[dict[str, list[int]]]:
    keys = [k for k in encoded if k != "attention_mask"]  # the mask is rebuilt from lengths when padding
    return [{k: encoded[k][i] for k in keys} for i in range(n)]


def encode_texts(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    pairs: Sequence[str] | None,
    spec: EncodingSpec,
) -> list[Features]:
    """Token ids for each input: one sequence (single text or cross-encoded pair) or two (bi-encoder)."""
    prefix = spec.text_prefix
    texts = [prefix + t for t in texts]
    common = {"truncation": True, "max_length": spec.max_length}
    if pairs is None:
        return [{"a": row} for row in _rows(tokenizer(texts, **common), len(texts))]
    pairs = [prefix + t for t in pairs]
    if spec.pair_encoding == "cross":
        rows = _rows(tokenizer(texts, pairs, **common), len(texts))
        return [{"a": row} for row in rows]
    rows_a = _rows(tokenizer(texts, **common), len(texts))
    rows_b = _rows(tokenizer(pairs, **common), len(pairs))
    return [{"a": a, "b": b} for a, b in zip(rows_a, rows_b, strict=True)]


def feature_length(features: Features) -> int:
    return sum(len(seq["input_ids"]) for seq in features.values())


def pad_sequences(rows: Sequence[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad to the longest row of this batch only (dynamic padding) and build the attention mask."""
    longest = max(len(r["input_ids"]) for r in rows)
    batch: dict[str, torch.Tensor] = {}
    for key in rows[0]:
        fill = pad_id if key == "input_ids" else 0
        batch[key] = torch.tensor([r[key] + [fill] * (longest - len(r[key])) for r in rows], dtype=torch.long)
    batch["attention_mask"] = torch.tensor(
        [[1] * len(r["input_ids"]) + [0] * (longest - len(r["input_ids"])) for r in rows], dtype=torch.long
    )
    return batch


def collate_features(features: Sequence[Features], pad_id: int) -> dict[str, dict[str, torch.Tensor]]:
    return {part: pad_sequences([f[part] for f in features], pad_id) for part in features[0]}
