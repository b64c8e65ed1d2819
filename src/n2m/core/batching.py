"""Dynamic padding: a batch is padded to its own longest row, never to `max_length`."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def pad_sequences(rows: Sequence[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad every key of the rows to the longest row of this batch and build the attention mask."""
    longest = max(len(r["input_ids"]) for r in rows)
    batch: dict[str, torch.Tensor] = {}
    for key in rows[0]:
        fill = pad_id if key == "input_ids" else 0
        batch[key] = torch.tensor([r[key] + [fill] * (longest - len(r[key])) for r in rows], dtype=torch.long)
    batch["attention_mask"] = torch.tensor(
        [[1] * len(r["input_ids"]) + [0] * (longest - len(r["input_ids"])) for r in rows], dtype=torch.long
    )
    return batch


def pad_id(tokenizer: object) -> int:
    """The tokenizer's padding id (0 where it has none)."""
    value = getattr(tokenizer, "pad_token_id", None)
    return value if value is not None else 0
