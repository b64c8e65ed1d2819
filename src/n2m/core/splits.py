"""Seeded splits every shape carves the same way: a test split first, then validation from the rest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import torch

T = TypeVar("T")


def seeded_split(n: int, ratio: float, seed: int) -> tuple[list[int], list[int]]:
    """(kept, held out) index lists; the same seed gives the same split on every machine."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    held = max(1, round(n * ratio))
    return sorted(order[held:]), sorted(order[:held])


def carve(items: Sequence[T], test_ratio: float, val_ratio: float, seed: int) -> dict[str, list[T]]:
    """`test` (seed + 1) then `val` (seed) held out of `items`, the rest as `train`; a split whose ratio is 0 is
    left out. Every shape and the split files they write use this one rule."""
    rest = list(items)
    out: dict[str, list[T]] = {}
    for name, ratio, salt in (("test", test_ratio, 1), ("val", val_ratio, 0)):
        if ratio and rest:
            kept, held = seeded_split(len(rest), ratio, seed + salt)
            out[name] = [rest[i] for i in held]
            rest = [rest[i] for i in kept]
    out["train"] = rest
    return out


def kfold(items: Sequence[T], folds: int, fold: int, seed: int) -> tuple[list[T], list[T]]:
    """(validation, training): fold `fold` of a seeded permutation validates, the other k - 1 train."""
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).tolist()
    n = len(order)
    held = set(order[fold * n // folds : (fold + 1) * n // folds])
    return [items[i] for i in sorted(held)], [x for i, x in enumerate(items) if i not in held]
