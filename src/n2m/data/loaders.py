"""The data loaders every shape's DataModule shares: length-grouped training batches, length-sorted evaluation."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from n2m.data.sampler import LengthGroupedSampler, SortedByLengthSampler
from n2m.errors import DataError


class BatchedDataModule(L.LightningDataModule):
    """Base of the shapes' DataModules: subclasses fill `self.datasets` (split → a Dataset with `.lengths`) in
    `setup` and define `_collate`; their hparams hold `batch_size`, `eval_batch_size`, `group_by_length`,
    `split_seed` and `num_workers`."""

    datasets: dict[str, Dataset]

    def _collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        data = self.datasets["train"]
        sampler = (
            LengthGroupedSampler(data.lengths, self.hparams.batch_size, seed=self.hparams.split_seed)
            if self.hparams.group_by_length
            else torch.utils.data.RandomSampler(data)
        )
        return self._loader(data, self.hparams.batch_size, sampler)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader("predict")

    def _loader(self, data: Dataset, batch_size: int, sampler: Any) -> DataLoader:
        return DataLoader(
            data,
            batch_size=batch_size,
            sampler=sampler,
            collate_fn=self._collate,
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
        )

    def _eval_loader(self, split: str) -> DataLoader:
        if split not in self.datasets:
            raise DataError(f"no {split} data: set `data.{split}`")
        data = self.datasets[split]
        size = self.hparams.eval_batch_size or self.hparams.batch_size * 2
        sampler = SortedByLengthSampler(data.lengths) if self.hparams.group_by_length else None
        return self._loader(data, size, sampler)
