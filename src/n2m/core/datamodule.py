"""`ShapeDataModule`, the template every shape's DataModule fills in, and `DataSpec`, what it tells the model
(docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import DataLoader, Dataset
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from n2m.backbones import resolve_backbone, trimmed_backbone
from n2m.core.card import Encoding, ModelCard
from n2m.core.samplers import LENGTH_POOL, LengthGroupedSampler, ShuffledSampler, SortedByLengthSampler
from n2m.core.splits import carve
from n2m.core.token_cache import cached_tokens
from n2m.errors import DataError

T = TypeVar("T")
STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("predict",)}


@dataclass(frozen=True)
class DataSpec:
    """What the data tells the model before it is built, resolved once by the DataModule: the data's part of
    the model card, and the folder the backbone (vocabulary-trimmed or not) is loaded from."""

    shape: str
    task: str
    inputs: list[str]
    backbone: str
    backbone_dir: str
    encoding: Encoding = field(default_factory=Encoding)
    labels: list[str] | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def card(self, **model_settings: Any) -> ModelCard:
        """The model card of a model trained on this data, with the model's own settings added."""
        from n2m import __version__

        settings = {**self.settings, **model_settings}
        labels = list(self.labels) if self.labels else None
        provenance = {"n2m_version": __version__}
        return ModelCard(self.shape, self.task, list(self.inputs), self.backbone, self.encoding, labels, settings,
                         provenance)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: DataSpec | dict[str, Any]) -> DataSpec:
        if isinstance(data, DataSpec):
            return data
        return cls(**{**data, "encoding": Encoding(**data.get("encoding", {}))})


class EncodedDataset(Dataset):
    """One split's encoded examples (and their targets), with each one's length for the samplers."""

    def __init__(self, features: list[Any], targets: list[Any] | None, lengths: list[int]) -> None:
        self.features = features
        self.targets = targets
        self.lengths = lengths

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = {"features": self.features[index], "index": index}
        if self.targets is not None:
            item["target"] = self.targets[index]
        return item


class ResumingLoader(DataLoader):
    """A DataLoader whose first pass starts `skip` batches in: a run resumed mid-epoch takes up the epoch's
    order where the checkpoint left it. The skipped batches are drawn and dropped (cheap: the data is encoded
    in memory), after Lightning's DDP sampler has split the order, so each rank skips its own share."""

    def __init__(self, *args: Any, skip: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.skip = skip

    def __iter__(self) -> Any:
        iterator = super().__iter__()
        skip, self.skip = self.skip, 0  # the first pass only: the next epoch starts at its beginning
        for _ in range(skip):
            next(iterator)
        return iterator


def train_position(trainer: L.Trainer) -> dict[str, int]:
    """The epoch being trained and how many of its batches were trained (not fetched: workers and Lightning
    fetch ahead); an epoch whose batches are all trained is position 0 of the next."""
    loop = trainer.fit_loop
    epoch = max(loop.epoch_progress.current.started - 1, 0)
    batches = loop.epoch_loop.batch_progress.current.processed
    if batches >= trainer.num_training_batches:
        epoch, batches = epoch + 1, 0
    return {"epoch": epoch, "batches": batches}


class ShapeDataModule(L.LightningDataModule):
    """Base of the shapes' DataModules. Their hparams hold at least `backbone`, `trim_vocab`, `vocab_corpus`,
    `batch_size`, `eval_batch_size`, `group_by_length`, `num_workers`, `split_seed` and `cache_tokens`.

    `group_by_length`: training batches of like lengths (less padding), each cut from a shuffled pool of that
    many batches sorted by length (True: 50); smaller pools mix more. False: a random order. Evaluation is sorted
    by length whenever it is not False."""

    def __init__(self) -> None:
        super().__init__()
        self.datasets: dict[str, Dataset] = {}
        self.examples: dict[str, list[Any]] = {}
        self.train_start = {"epoch": 0, "batches": 0}  # where the next training loader starts (see state_dict)
        self.order_seed: int | None = None  # the training order's seed: the run's, once the first loader is built

    # ---- hooks a shape fills in ---------------------------------------------------------------------------
    @property
    def spec(self) -> DataSpec:
        raise NotImplementedError

    def read_splits(self, stage: str) -> dict[str, list[Any]]:
        """Validated examples of the splits a stage uses (see `select`)."""
        raise NotImplementedError

    def vocabulary_texts(self) -> list[str]:
        """The texts a trimmed vocabulary must tokenize exactly as the full one does."""
        raise NotImplementedError

    def encode(self, examples: list[Any], with_targets: bool) -> Dataset:
        """Examples → a Dataset whose items `collate` batches and whose `.lengths` the samplers read."""
        raise NotImplementedError

    def collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        raise NotImplementedError

    # ---- what the base does with them -----------------------------------------------------------------
    @property
    def encoding(self) -> Encoding:
        return Encoding(self.hparams.max_length, self.hparams.text_prefix)

    def has_split(self, stage: str) -> bool:
        """Whether the recipe gives data for a stage (`fit`, `validate`, `test`, `predict`): a file of its own,
        or a way to carve it from `train` (a ratio, k folds, a split file)."""
        h = self.hparams
        if stage in ("fit", "predict"):
            return bool(h.train if stage == "fit" else h.predict)
        own, ratio = (h.val, h.val_ratio or h.get("folds")) if stage == "validate" else (h.test, h.test_ratio)
        return bool(own or (h.train and (ratio or h.get("split_file"))))

    @cached_property
    def backbone_dir(self) -> str:
        """The backbone folder, found once. A `predict` file is read first: loading (or converting) a backbone
        can take minutes, and a bad input file should be named before that."""
        if self.has_split("predict"):
            self.read_splits("predict")
        return self.find_backbone()

    def find_backbone(self) -> str:
        """As named, or cut to the pieces of the training and validation texts (and the `vocab_corpus` files)
        when `trim_vocab` is set; every one of those texts tokenizes as before."""
        h = self.hparams
        if not h.trim_vocab:
            return str(resolve_backbone(h.backbone))
        return str(trimmed_backbone(h.backbone, self.vocabulary_texts() + self.vocabulary_corpus()))

    def vocabulary_corpus(self) -> list[str]:
        """The non-empty lines of the `vocab_corpus` files: more text a trimmed vocabulary must cover."""
        paths = self.hparams.get("vocab_corpus") or []
        return [line for p in paths for line in Path(p).read_text(encoding="utf-8").splitlines() if line.strip()]

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return AutoTokenizer.from_pretrained(self.backbone_dir)

    def prepare_data(self) -> None:
        """Once per machine: convert (and trim) the backbone, validate every file, tokenize into the cache."""
        self.backbone_dir  # noqa: B018 - before any process needs it
        for stage in ("fit", "test", "predict"):
            if self.has_split(stage):
                self.read_splits(stage)

    def setup(self, stage: str) -> None:
        for split, examples in self.read_splits(stage).items():
            self.examples[split] = examples
            self.datasets[split] = self.encode(examples, with_targets=split != "predict")

    def carve_train(self, train: list[T], given: dict[str, list[T] | None]) -> dict[str, list[T]]:
        """Splits with a file of their own (`given`) as they are; the others carved from `train` by their ratio."""
        h = self.hparams
        test_ratio = 0.0 if given.get("test") is not None else h.test_ratio
        val_ratio = 0.0 if given.get("val") is not None else h.val_ratio
        splits = carve(train, test_ratio, val_ratio, h.split_seed)
        splits.update({name: examples for name, examples in given.items() if examples is not None})
        return splits

    def select(self, splits: dict[str, list[T]], stage: str) -> dict[str, list[T]]:
        """The splits `stage` uses; a missing one is an error that says what to set (training may go
        without validation)."""
        wanted = STAGE_SPLITS[stage]
        for name in wanted:
            if not splits.get(name) and not (name == "val" and stage == "fit"):
                if name == "predict":
                    raise DataError("nothing to predict: set `data.predict` to a file")
                ways = [f"`data.{name}`"] + ([f"`data.{name}_ratio`"] if name != "train" else [])
                ways += ["`data.split_file`"] if "split_file" in self.hparams and name != "train" else []
                raise DataError(f"no {name} data: set {' or '.join(ways)}")
        return {name: splits[name] for name in wanted if splits.get(name)}

    def cached(self, key: Any, encode: Callable[[], Any]) -> Any:
        """`encode()`, through the token cache unless `cache_tokens` is off."""
        return cached_tokens(self.tokenizer, key, encode) if self.hparams.cache_tokens else encode()

    # ---- loaders ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint of a fit: the training order's seed and position, so a resumed run sees
        exactly the batches an uninterrupted one would (the order is a function of that seed and the epoch)."""
        if self.trainer is None or self.trainer.state.fn != TrainerFn.FITTING:
            return {}
        return {"train_order": train_position(self.trainer), "order_seed": self.order_seed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restored before `train_dataloader` is asked for, which builds the order from this seed and position."""
        self.train_start = dict(state_dict.get("train_order") or self.train_start)
        self.order_seed = state_dict.get("order_seed", self.order_seed)

    def train_dataloader(self) -> DataLoader:
        data = self.datasets["train"]
        h = self.hparams
        start, self.train_start = self.train_start, {"epoch": 0, "batches": 0}
        epoch = start["epoch"]
        if self.order_seed is None:
            # the run's seed (`seed_everything` seeds torch), as Hugging Face's `data_seed` defaults to `seed`: runs
            # over several seeds then differ in their order too, not only in their dropout
            self.order_seed = torch.initial_seed()
        seed = self.order_seed
        if h.group_by_length:
            pool = LENGTH_POOL if h.group_by_length is True else int(h.group_by_length)
            lengths = data.lengths  # type: ignore[attr-defined]
            sampler: Any = LengthGroupedSampler(lengths, h.batch_size, seed=seed, mega_factor=pool, epoch=epoch)
        else:
            sampler = ShuffledSampler(len(data), seed=seed, epoch=epoch)  # type: ignore[arg-type]
        return self.loader(data, h.batch_size, sampler, skip=start["batches"])

    def val_dataloader(self) -> DataLoader:
        return self.eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.eval_loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self.eval_loader("predict")

    def loader(self, data: Dataset, batch_size: int | None, sampler: Any, skip: int = 0) -> DataLoader:
        """A loader over `sampler`'s order in batches of `batch_size`; `batch_size=None`: `sampler` yields whole
        batches (a shape's own batching, e.g. N21 retrieval's)."""
        workers = self.hparams.num_workers
        batching = {"batch_size": batch_size, "sampler": sampler} if batch_size else {"batch_sampler": sampler}
        # Its own generator: starting a pass then draws no number from torch's global one, so dropout after a
        # resume draws what it would have drawn (the callbacks restore that state; n2m.core.callbacks).
        generator = torch.Generator().manual_seed(self.hparams.split_seed)
        return ResumingLoader(data, **batching, collate_fn=self.collate, skip=skip, num_workers=workers,
                              persistent_workers=workers > 0, generator=generator)  # fmt: skip

    def eval_loader(self, split: str) -> DataLoader:
        if split not in self.datasets:
            raise DataError(f"no {split} data: set `data.{split}`")
        data = self.datasets[split]
        size = self.hparams.eval_batch_size or self.hparams.batch_size * 2
        lengths = data.lengths  # type: ignore[attr-defined]
        return self.loader(data, size, SortedByLengthSampler(lengths) if self.hparams.group_by_length else None)
