"""Dynamic padding: a batch is padded to its own longest row, never to `max_length`."""

from __future__ import annotations

import itertools
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


def length_runs(lengths: torch.Tensor, most: int, overhead: float = 0.0) -> list[torch.Tensor]:
    """A batch's row indices, longest first, cut into at most `most` length-sorted runs, as many as cost least:
    each run is padded only to its own longest row, and every run past the first costs `overhead` padded tokens
    per real token of the batch (its calls, the gathers around it). On a GPU one run, the whole batch padded:
    there a launch costs more than padding."""
    order = lengths.argsort(descending=True)
    if lengths.device.type != "cpu" or most <= 1 or len(order) <= 1:
        return [order]
    ordered = lengths[order].tolist()
    real = sum(ordered)

    def cost(count: int) -> float:  # runs as `tensor_split` cuts them: the first `n % count` one row longer
        size, longer = divmod(len(ordered), count)
        starts = [i * size + min(i, longer) for i in range(count + 1)]
        padded = sum((end - start) * ordered[start] for start, end in itertools.pairwise(starts))
        return padded + (count - 1) * overhead * real

    count = min(range(1, min(most, len(ordered)) + 1), key=cost)
    return list(order.tensor_split(count))
