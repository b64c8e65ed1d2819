"""Seeded splits every shape carves the same way: a test split first, then validation from the rest."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
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


def linked_groups(keys: Sequence[Iterable[Hashable]]) -> list[list[int]]:
    """Item indices grouped so that items sharing any key are in one group, through chains too (a union-find):
    carving whole groups keeps every key in one split. Groups come in the order of their first item."""
    parent = list(range(len(keys)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[Hashable, int] = {}
    for i, item_keys in enumerate(keys):
        for key in item_keys:
            if key in first:
                parent[root(i)] = root(first[key])
            else:
                first[key] = i
    groups: dict[int, list[int]] = {}
    for i in range(len(keys)):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def kfold(items: Sequence[T], folds: int, fold: int, seed: int) -> tuple[list[T], list[T]]:
    """(validation, training): fold `fold` of a seeded permutation validates, the other k - 1 train."""
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).tolist()
    n = len(order)
    held = set(order[fold * n // folds : (fold + 1) * n // folds])
    return [items[i] for i in sorted(held)], [x for i, x in enumerate(items) if i not in held]
