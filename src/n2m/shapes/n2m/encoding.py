"""N2M tokenization, shared by the DataModule and the Predictor so both feed the encoder the same ids.

No Lightning here: the Predictor imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase

from n2m.core.batching import pad_sequences
from n2m.core.card import Encoding


def encode_sources(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], encoding: Encoding) -> list[list[int]]:
    """Encoder ids of each source: prefixed, with the tokenizer's start and end tokens, cut at `max_length`."""
    prefixed = [encoding.text_prefix + t for t in texts]
    return tokenizer(prefixed, truncation=True, max_length=encoding.max_length)["input_ids"]


def encode_targets(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int, decoder_start: int
) -> list[list[int]]:
    """Label ids: the target and its end token, without a leading start token (the decoder is fed that)."""
    encoded = tokenizer(text_target=list(texts), truncation=True, max_length=max_length + 1)["input_ids"]
    out = []
    for ids in encoded:
        ids = ids[1:] if ids and ids[0] == decoder_start else ids
        out.append(ids[:max_length] if len(ids) > max_length else ids)
    return out


def pad_sources(rows: Sequence[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """`input_ids` and `attention_mask` of a batch of sources, padded to its longest."""
    return pad_sequences([{"input_ids": list(r)} for r in rows], pad_id)
