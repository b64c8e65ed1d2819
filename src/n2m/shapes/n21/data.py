"""`TextDataModule`: files → validated N21 examples → cached token ids → length-grouped, dynamically padded
batches (the template is `n2m.core.datamodule.ShapeDataModule`)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, replace
from functools import cached_property
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from n2m.core.batching import pad_sequences
from n2m.core.card import MAX_LENGTH, Encoding
from n2m.core.datamodule import DataSpec, EncodedDataset, ResumingLoader, ShapeDataModule
from n2m.core.splits import kfold
from n2m.errors import ConfigError, DataError
from n2m.shapes.n21.encoding import Features, PairEncoding, collate_features, encode_texts, feature_length
from n2m.shapes.n21.examples import (
    Columns,
    Objective,
    ReadOptions,
    SequenceExample,
    check_known_labels,
    load_sequence_examples,
    load_texts,
)


class TextDataModule(ShapeDataModule):
    """Data for N21 tasks (one text or a pair → a class, several classes, or a score).

    Splits come from separate files or from seeded ratio splits of `train` (or k folds of it). The data is
    the one home of what it is and how it is encoded: `backbone` (cut to the pieces the training and
    validation texts use with `trim_vocab`), `objective`, `pair_encoding` (`cross`: one sequence
    `A </s></s> B`; `bi`: each text alone through a shared encoder), `max_length`, `text_prefix`; `label_names`
    default to the sorted labels of the training file and `score_range` to its lowest and highest score.
    The model is built from `spec`.

    `objective: retrieval` reads (query `text`, positive passage `text_pair`[, `hard_negative`]) rows; training
    batches never hold one text twice (a copy of a query's positive would count as its negative), and a
    validation or test split is ranked: each distinct query against the split's distinct passages plus the
    `corpus` file's (its `text_pair` column). `passage_prefix` goes before passages instead of `text_prefix`.
    """

    def __init__(
        self,
        train: str | None = None,
        val: str | None = None,
        test: str | None = None,
        predict: str | None = None,
        columns: Columns | None = None,
        read: ReadOptions | None = None,
        backbone: str = "e5-small",
        objective: Objective = "regression",
        pair_encoding: PairEncoding = "cross",
        label_names: list[str] | None = None,
        score_range: tuple[float, float] | None = None,
        val_ratio: float = 0.0,
        test_ratio: float = 0.0,
        split_seed: int = 42,
        folds: int | None = None,
        fold: int = 0,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        max_length: int = MAX_LENGTH,
        text_prefix: str = "",
        swap_pairs: bool = False,
        group_by_length: bool | int = True,
        num_workers: int = 0,
        cache_tokens: bool = True,
        trim_vocab: bool = False,
        vocab_corpus: list[str] | None = None,
        passage_prefix: str | None = None,
        corpus: str | None = None,
    ) -> None:
        super().__init__()
        self.columns = Columns(**columns) if isinstance(columns, dict) else columns or Columns()
        self.read = ReadOptions(**read) if isinstance(read, dict) else read or ReadOptions()
        # plain dicts in checkpoints, so they load with `torch.load(weights_only=True)`
        self.save_hyperparameters(ignore=["columns", "read", "score_range"])
        self.hparams.update(columns=asdict(self.columns), read=asdict(self.read))
        self.given_score_range = score_range
        self.loaded: dict[tuple[str, bool], list[SequenceExample]] = {}

    # ---- what the model needs to know before it is built -------------------------------------------
    @cached_property
    def spec(self) -> DataSpec:
        h = self.hparams
        if h.objective == "retrieval" and (not self.columns.text_pair or h.pair_encoding != "bi"):
            raise ConfigError("a retrieval task needs `data.columns.text_pair` (the positive passage) and "
                              "`data.pair_encoding: bi` (queries and passages each get a vector)")  # fmt: skip
        inputs = ["text", "text_pair"] if self.columns.text_pair else ["text"]
        score_range = list(self.score_range) if self.score_range else None
        settings = {"pair_encoding": h.pair_encoding, "score_range": score_range}
        if h.passage_prefix is not None:
            settings["passage_prefix"] = h.passage_prefix
        return DataSpec("N21", h.objective, inputs, h.backbone, self.backbone_dir, self.encoding, self.label_names,
                        settings)  # fmt: skip

    @cached_property
    def label_names(self) -> list[str] | None:
        if self.hparams.objective in ("regression", "retrieval"):
            return None
        if self.hparams.label_names:
            return list(self.hparams.label_names)
        if not self.hparams.train:
            raise DataError("a classification task needs `label_names` or a `train` file to read them from")
        labels: set[str] = set()
        for ex in self._load(self.hparams.train):
            labels.update(ex.label if isinstance(ex.label, tuple) else (ex.label,))
        return sorted(labels)

    @cached_property
    def score_range(self) -> tuple[float, float] | None:
        """(low, high) of regression labels: given, or the training file's min and max."""
        if self.hparams.objective != "regression":
            return None
        if self.given_score_range:
            return tuple(self.given_score_range)
        if not self.hparams.train:
            raise DataError("a regression task needs `score_range` or a `train` file to read it from")
        scores = [float(ex.label) for ex in self._load(self.hparams.train)]
        if min(scores) == max(scores):
            raise DataError(f"every label is {scores[0]}: nothing to learn", self.hparams.train)
        return (min(scores), max(scores))

    # ---- the template's hooks -----------------------------------------------------------------------
    def vocabulary_texts(self) -> list[str]:
        splits = self.read_splits("fit")
        examples = [ex for exs in splits.values() for ex in exs]
        prefix = self.encoding.text_prefix
        passages = [t for ex in examples for t in (ex.text_pair, ex.hard_negative) if t is not None]
        return [prefix + ex.text for ex in examples] + [self.passage_encoding.text_prefix + t for t in
                                                        passages + self.corpus_texts()]  # fmt: skip

    @property
    def passage_encoding(self) -> Encoding:
        """How second texts (passages) are encoded: `passage_prefix` where it is set."""
        prefix = self.hparams.get("passage_prefix")
        return self.encoding if prefix is None else replace(self.encoding, text_prefix=prefix)

    def corpus_texts(self) -> list[str]:
        """The `corpus` file's passages (its `text_pair` column): more documents every ranked split searches."""
        corpus = self.hparams.get("corpus")
        if not corpus:
            return []
        return load_texts(corpus, self.columns.text_pair or "text_pair", self.read).texts

    def read_splits(self, stage: str) -> dict[str, list[SequenceExample]]:
        """Validated examples for a stage; ratio splits are carved from `train` with `split_seed`."""
        h = self.hparams
        if stage == "predict":
            return self.select({"predict": self._load(h.predict, with_labels=False) if h.predict else []}, stage)
        given = {name: self._load_checked(path) if path else None for name, path in (("test", h.test), ("val", h.val))}
        splits = self.carve_train(self._load(h.train) if h.train else [], given)
        if h.folds:
            splits["val"], splits["train"] = self._fold(splits["train"])
        out = self.select(splits, stage)
        if "train" in out and h.swap_pairs and self.columns.text_pair:
            # (A, B) and (B, A) carry the same label for symmetric tasks such as STS
            out["train"] = out["train"] + [
                SequenceExample(ex.text_pair, ex.text, ex.label, ex.id, ex.line) for ex in out["train"]
            ]
        return out

    def setup(self, stage: str) -> None:
        if self.hparams.objective != "retrieval":
            return super().setup(stage)
        for split, examples in self.read_splits(stage).items():
            self.examples[split] = examples
            ranked = split in ("val", "test")
            self.datasets[split] = self.ranking_set(examples) if ranked else self.encode(examples, split == "train")
        return None

    def encode(self, examples: list[SequenceExample], with_targets: bool) -> EncodedDataset:
        texts = [ex.text for ex in examples]
        pairs = [ex.text_pair for ex in examples] if self.columns.text_pair else None
        pair_encoding = self.hparams.pair_encoding
        pair_prefix = self.hparams.get("passage_prefix")
        key = [texts, pairs, asdict(self.encoding), pair_encoding, pair_prefix]
        features = self.cached(
            key, lambda: encode_texts(self.tokenizer, texts, pairs, self.encoding, pair_encoding, pair_prefix)
        )
        negatives = [ex.hard_negative for ex in examples if ex.hard_negative is not None]
        if negatives:  # a retrieval row's third part (the reader lets no row of such a file go without one)
            features = [{**f, "c": n} for f, n in zip(features, self.encode_single(negatives, "b"), strict=True)]
        retrieval = self.hparams.objective == "retrieval"
        targets = [self._target(ex.label) for ex in examples] if with_targets and not retrieval else None
        return EncodedDataset(features, targets, [feature_length(f) for f in features])

    def encode_single(self, texts: list[str], part: str) -> list[dict[str, list[int]]]:
        """Token ids of texts alone: queries (`a`, with `text_prefix`) or passages (`b`, with `passage_prefix`)."""
        encoding = self.encoding if part == "a" else self.passage_encoding
        key = [texts, asdict(encoding), "single"]
        return [f["a"] for f in self.cached(key, lambda: encode_texts(self.tokenizer, texts, None, encoding))]

    def ranking_set(self, examples: list[SequenceExample]) -> EncodedDataset:
        """A retrieval split to rank: one item per distinct query (`a`; its target: its id and the ids of its
        relevant passages) and one per distinct passage (`b`; its target: its id), each encoded once."""
        passages: dict[str, int] = {}
        relevant: dict[str, list[int]] = {}
        for ex in examples:
            assert ex.text_pair is not None
            found = relevant.setdefault(ex.text, [])
            pid = passages.setdefault(ex.text_pair, len(passages))
            if pid not in found:
                found.append(pid)
            if ex.hard_negative is not None:
                passages.setdefault(ex.hard_negative, len(passages))
        for text in self.corpus_texts():
            passages.setdefault(text, len(passages))
        features: list[Features] = [{"a": f} for f in self.encode_single(list(relevant), "a")]
        features += [{"b": f} for f in self.encode_single(list(passages), "b")]
        targets: list[Any] = [(q, tuple(ids)) for q, ids in enumerate(relevant.values())]
        targets += list(range(len(passages)))
        return EncodedDataset(features, targets, [feature_length(f) for f in features])

    def train_dataloader(self) -> DataLoader:
        if self.hparams.objective != "retrieval":
            return super().train_dataloader()
        shared = super().train_dataloader()  # the length-grouped (or shuffled) order, and where a resume starts
        assert isinstance(shared, ResumingLoader)
        keys = [{ex.text, ex.text_pair} for ex in self.examples["train"]]
        batches = DistinctKeysBatchSampler(shared.sampler, keys, self.hparams.batch_size)
        return self.loader(self.datasets["train"], None, batches, skip=shared.skip)

    def collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        if len(items[0]["features"]) == 1 and self.hparams.objective == "retrieval":
            return self.collate_ranking(items)
        batch: dict[str, Any] = collate_features([it["features"] for it in items], self.tokenizer.pad_token_id)
        batch["index"] = torch.tensor([it["index"] for it in items])
        if "target" in items[0]:
            dtype = torch.long if self.hparams.objective == "classification" else torch.float
            batch["target"] = torch.tensor([it["target"] for it in items], dtype=dtype)
        return batch

    def collate_ranking(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """A batch of a ranked split: its queries (`a`, `query_id`, `relevant`), its passages (`b`, `passage_id`)."""
        pad = self.tokenizer.pad_token_id
        queries = [it for it in items if "a" in it["features"]]
        passages = [it for it in items if "b" in it["features"]]
        batch: dict[str, Any] = {"index": torch.tensor([it["index"] for it in items])}
        if queries:
            batch["a"] = pad_sequences([it["features"]["a"] for it in queries], pad)
            batch["query_id"] = torch.tensor([it["target"][0] for it in queries])
            batch["relevant"] = [list(it["target"][1]) for it in queries]
        if passages:
            batch["b"] = pad_sequences([it["features"]["b"] for it in passages], pad)
            batch["passage_id"] = torch.tensor([it["target"] for it in passages])
        return batch

    # ---- internals -----------------------------------------------------------------------------------
    def _load(self, path: str, with_labels: bool = True) -> list[SequenceExample]:
        """A file's examples, read and validated once however many splits and properties ask."""
        if (path, with_labels) in self.loaded:
            return self.loaded[path, with_labels]
        examples = load_sequence_examples(path, self.columns, self.hparams.objective, self.read, with_labels)
        if with_labels and self.given_score_range:  # scores are learned on [0, 1] of this range: none may leave it
            low, high = self.given_score_range
            for ex in examples:
                if not low <= ex.label <= high:  # type: ignore[operator]
                    raise DataError(
                        f"score {ex.label} is outside score_range [{float(low)}, {float(high)}]",
                        path,
                        ex.line,
                        self.columns.label,
                        hint="fix the row, or widen `data.score_range`",
                    )
        self.loaded[path, with_labels] = examples
        return examples

    def _load_checked(self, path: str) -> list[SequenceExample]:
        examples = self._load(path)
        check_known_labels(examples, self.label_names or [], path, self.hparams.objective, self.columns.label)
        return examples

    def _fold(self, examples: list[SequenceExample]) -> tuple[list[SequenceExample], list[SequenceExample]]:
        """k-fold: fold `fold` of a seeded permutation validates, the other k - 1 train."""
        h = self.hparams
        if h.val or h.val_ratio:
            raise DataError("set either `data.folds` or `data.val` / `data.val_ratio`: the folds provide validation")
        if not 0 <= h.fold < h.folds:
            raise DataError(f"`data.fold` is {h.fold}; with {h.folds} folds it must be 0 … {h.folds - 1}")
        return kfold(examples, h.folds, h.fold, h.split_seed)

    def _target(self, label: Any) -> Any:
        objective = self.hparams.objective
        if objective == "regression":
            return float(label)
        index = {name: i for i, name in enumerate(self.label_names or [])}
        if objective == "classification":
            return index[label]
        hot = [0.0] * len(index)
        for name in label:
            hot[index[name]] = 1.0
        return hot


class DistinctKeysBatchSampler(Sampler[list[int]]):
    """Batches from an index sampler's order in which no two items share a key (a text): with in-batch
    negatives, a copy of a query's positive elsewhere in the batch would be scored as a negative. An item that
    collides waits for the first later batch that can take it; otherwise the base order (length groups) is kept.
    Every batch is full but the last few. Under DDP each rank re-batches its own share, so the guarantee holds
    on one device."""

    def __init__(self, base: Iterable[int], keys: Sequence[set[str]], batch_size: int) -> None:
        self.base = base
        self.keys = keys
        self.batch_size = batch_size

    def fill(self, batch: list[int], used: set[str], waiting: list[int]) -> list[int]:
        """Move what fits from `waiting` into `batch` (in order); the rest keeps waiting."""
        left = []
        for i in waiting:
            if len(batch) < self.batch_size and self.keys[i].isdisjoint(used):
                batch.append(i)
                used.update(self.keys[i])
            else:
                left.append(i)
        return left

    def batches(self, order: Iterable[int]) -> Iterator[list[int]]:
        waiting: list[int] = []
        batch: list[int] = []
        used: set[str] = set()
        for i in order:
            waiting = self.fill(batch, used, [*waiting, i])
            while len(batch) == self.batch_size:
                yield batch
                batch, used = [], set()
                waiting = self.fill(batch, used, waiting)
        while waiting:
            waiting = self.fill(batch, used, waiting)
            yield batch
            batch, used = [], set()
        if batch:
            yield batch

    def set_epoch(self, epoch: int) -> None:
        """Lightning sets the epoch on a loader's batch sampler: the order beneath is what depends on it."""
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        return self.batches(self.base)

    def __len__(self) -> int:
        # the count depends on the order: a copy of the base gives the next epoch's (a seeded sampler's exactly)
        return sum(1 for _ in self.batches(copy.deepcopy(self.base)))


DataModule = TextDataModule
