"""Samplers that put texts of similar length in the same batch, so padding costs little."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

LENGTH_POOL = 50  # batches per length-sorted pool, as Hugging Face's `group_by_length` (its `megabatch_mult`)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The random stream of one epoch's order: (seed, epoch) mixed, not added, so that seed 1's first epoch is
    not seed 0's second and runs over several seeds shuffle independently."""
    mixed = np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(mixed))


class LengthGroupedSampler(Sampler[int]):
    """Shuffled order in which each run of `batch_size` indices has similar lengths.

    Indices are shuffled, cut into mega-batches of `batch_size * mega_factor`, each sorted by length
    and cut into batches; the batches are then shuffled so long and short ones alternate over the epoch.
    It is a plain index sampler, so Lightning's DistributedSampler wrapper splits it across ranks
    (neighbours go to different ranks, which keeps each rank's batches length-homogeneous).
    """

    def __init__(
        self, lengths: Sequence[int], batch_size: int, seed: int = 0, mega_factor: int = LENGTH_POOL, epoch: int = 0
    ) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.mega = batch_size * mega_factor
        self.epoch = epoch  # a resumed run starts at its checkpoint's epoch (the order is a function of both)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = epoch_generator(self.seed, self.epoch)
        self.epoch += 1  # a fresh order each epoch even when nobody calls set_epoch
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        batches: list[list[int]] = []
        for start in range(0, len(order), self.mega):
            chunk = sorted(order[start : start + self.mega], key=self.lengths.__getitem__, reverse=True)
            batches.extend(chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        for b in torch.randperm(len(batches), generator=generator).tolist():
            yield from batches[b]


class ShuffledSampler(Sampler[int]):
    """A fresh random order each epoch, a function of `seed` and the epoch alone (not of the global random state,
    as `RandomSampler`'s is), so a resumed run can rebuild the order of the epoch it was stopped in."""

    def __init__(self, size: int, seed: int = 0, epoch: int = 0) -> None:
        self.size = size
        self.seed = seed
        self.epoch = epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        generator = epoch_generator(self.seed, self.epoch)
        self.epoch += 1
        yield from torch.randperm(self.size, generator=generator).tolist()


class SortedByLengthSampler(Sampler[int]):
    """Evaluation order: longest first, so batches are tight; predictions are put back in file order later."""

    def __init__(self, lengths: Sequence[int]) -> None:
        self.order = sorted(range(len(lengths)), key=lambda i: -lengths[i])

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)
