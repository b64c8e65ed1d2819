"""N2N tokenization and batching, shared by the DataModule and the Predictor so both read units the same way.

A sentence is a text and its *units* (words or characters, as `[start, end)` character offsets); each unit is
read from the subword token holding its first character (see `spans.align_units_to_tokens`). No Lightning here:
the Predictor imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase

from n2m.core.batching import pad_sequences
from n2m.core.card import Encoding
from n2m.shapes.n2n.examples import TokenExample
from n2m.shapes.n2n.spans import align_units_to_tokens

Features = dict[str, list[int]]  # input_ids, and per unit: unit_token (-1: none), unit_bucket


def encode_units(
    tokenizer: PreTrainedTokenizerBase, examples: Sequence[TokenExample], encoding: Encoding
) -> list[Features]:
    """Subword ids of each text, and for each unit the token it is read from and its offset bucket there.

    `encoding.text_prefix` is put before every text for the tokenizer (and counts towards `max_length`); the
    units are shifted by its length and aligned over the whole string, so each still reads the token that holds
    its first character of the real text, and no unit ever reads a token of the prefix."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("N2N tasks need a fast tokenizer (character offsets come from `return_offsets_mapping`)")
    prefix = encoding.text_prefix
    shift = len(prefix)
    texts = [prefix + ex.text for ex in examples]
    encoded = tokenizer(texts, truncation=True, max_length=encoding.max_length, return_offsets_mapping=True)
    features = []
    for i, ex in enumerate(examples):
        units = [(a + shift, b + shift) for a, b in ex.units] if shift else ex.units
        unit_token, unit_bucket = align_units_to_tokens(texts[i], units, encoded["offset_mapping"][i])
        features.append({"input_ids": encoded["input_ids"][i], "unit_token": unit_token, "unit_bucket": unit_bucket})
    return features


def collate_units(
    features: Sequence[Features], labels: Sequence[Sequence[int]] | None, pad_id: int
) -> dict[str, torch.Tensor]:
    """Dynamic padding of tokens and of units; a unit with no token (`unit_token` -1) is masked out."""
    batch = pad_sequences([{"input_ids": f["input_ids"]} for f in features], pad_id)
    longest = max(len(f["unit_token"]) for f in features)
    batch["unit_token"] = torch.tensor([f["unit_token"] + [-1] * (longest - len(f["unit_token"])) for f in features])
    batch["unit_bucket"] = torch.tensor([f["unit_bucket"] + [0] * (longest - len(f["unit_bucket"])) for f in features])
    batch["num_units"] = torch.tensor([len(f["unit_token"]) for f in features])
    if labels is not None:
        # -100: padding; -1: a tag the model does not know (scored as wrong, never trained on)
        batch["labels"] = torch.tensor([list(row) + [-100] * (longest - len(row)) for row in labels])
    return batch
