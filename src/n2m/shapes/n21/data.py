"""`TextDataModule`: files → validated N21 examples → cached token ids → length-grouped, dynamically padded
batches (the template is `n2m.core.datamodule.ShapeDataModule`)."""

from __future__ import annotations

from dataclasses import asdict
from functools import cached_property
from typing import Any

import torch

from n2m.core.card import MAX_LENGTH
from n2m.core.datamodule import DataSpec, EncodedDataset, ShapeDataModule
from n2m.core.splits import kfold
from n2m.errors import DataError
from n2m.shapes.n21.encoding import PairEncoding, collate_features, encode_texts, feature_length
from n2m.shapes.n21.examples import (
    Columns,
    Objective,
    ReadOptions,
    SequenceExample,
    check_known_labels,
    load_sequence_examples,
)


class TextDataModule(ShapeDataModule):
    """Data for N21 tasks (one text or a pair → a class, several classes, or a score).

    Splits come from separate files or from seeded ratio splits of `train` (or k folds of it). The data is
    the one home of what it is and how it is encoded: `backbone` (cut to the pieces the training and
    validation texts use with `trim_vocab`), `objective`, `pair_encoding` (`cross`: one sequence
    `A </s></s> B`; `bi`: each text alone through a shared encoder), `max_length`, `text_prefix`; `label_names`
    default to the sorted labels of the training file and `score_range` to its lowest and highest score.
    The model is built from `spec`.
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
        group_by_length: bool = True,
        num_workers: int = 0,
        cache_tokens: bool = True,
        trim_vocab: bool = False,
        vocab_corpus: list[str] | None = None,
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
        inputs = ["text", "text_pair"] if self.columns.text_pair else ["text"]
        score_range = list(self.score_range) if self.score_range else None
        settings = {"pair_encoding": h.pair_encoding, "score_range": score_range}
        return DataSpec("N21", h.objective, inputs, h.backbone, self.backbone_dir, self.encoding, self.label_names,
                        settings)  # fmt: skip

    @cached_property
    def label_names(self) -> list[str] | None:
        if self.hparams.objective == "regression":
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
        texts = [t for exs in splits.values() for ex in exs for t in (ex.text, ex.text_pair) if t is not None]
        return [self.encoding.text_prefix + t for t in texts]

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

    def encode(self, examples: list[SequenceExample], with_targets: bool) -> EncodedDataset:
        texts = [ex.text for ex in examples]
        pairs = [ex.text_pair for ex in examples] if self.columns.text_pair else None
        pair_encoding = self.hparams.pair_encoding
        key = [texts, pairs, asdict(self.encoding), pair_encoding]
        features = self.cached(key, lambda: encode_texts(self.tokenizer, texts, pairs, self.encoding, pair_encoding))
        targets = [self._target(ex.label) for ex in examples] if with_targets else None
        return EncodedDataset(features, targets, [feature_length(f) for f in features])

    def collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = collate_features([it["features"] for it in items], self.tokenizer.pad_token_id)
        batch["index"] = torch.tensor([it["index"] for it in items])
        if "target" in items[0]:
            dtype = torch.long if self.hparams.objective == "classification" else torch.float
            batch["target"] = torch.tensor([it["target"] for it in items], dtype=dtype)
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


DataModule = TextDataModule
