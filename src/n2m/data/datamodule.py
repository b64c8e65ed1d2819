"""`TextDataModule`: files → validated examples → cached token ids → length-grouped, dynamically padded batches."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from n2m.backbones import n2m_home, resolve_backbone, trimmed_backbone
from n2m.data.encoding import EncodingSpec, PairEncoding, collate_features, encode_texts, feature_length
from n2m.data.examples import (
    Columns,
    Objective,
    ReadOptions,
    SequenceExample,
    check_known_labels,
    load_sequence_examples,
)
from n2m.data.loaders import BatchedDataModule
from n2m.errors import DataError


class EncodedDataset(Dataset):
    def __init__(self, features: list[dict], targets: list[Any] | None) -> None:
        self.features = features
        self.targets = targets
        self.lengths = [feature_length(f) for f in features]

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = {"features": self.features[index], "index": index}
        if self.targets is not None:
            item["target"] = self.targets[index]
        return item


def seeded_split(n: int, ratio: float, seed: int) -> tuple[list[int], list[int]]:
    """(kept, held out) index lists; the same seed gives the same split on every machine."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    held = max(1, round(n * ratio))
    return sorted(order[held:]), sorted(order[:held])


def cached_tokens(tokenizer: PreTrainedTokenizerBase, key: Any, encode: Callable[[], Any]) -> Any:
    """`encode()`'s result, kept under $N2M_HOME/cache/tokens keyed by `key` (JSON: the texts and how they are
    encoded) and the tokenizer's own file, so each text is tokenized once per machine (every shape uses this)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(key, ensure_ascii=False).encode())
    tokenizer_file = Path(tokenizer.name_or_path) / "tokenizer.json"
    digest.update(tokenizer_file.read_bytes() if tokenizer_file.is_file() else tokenizer.name_or_path.encode())
    path = n2m_home() / "cache" / "tokens" / f"{digest.hexdigest()[:32]}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    features = encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save(features, tmp)
    os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    return features


class TextDataModule(BatchedDataModule):
    """Data for N21 tasks (one text or a pair → a class, several classes, or a score).

    Splits come from separate files or from seeded ratio splits of `train`. `backbone`, `objective`
    and `pair_encoding` come from the model (the CLI links them); `label_names` default to the sorted
    labels of the training file and `score_range` to its lowest and highest score; the model is built
    from `backbone_dir` (the backbone, vocabulary-trimmed when `trim_vocab` is set).
    """

    def __init__(
        self,
        train: str | None = None,
        val: str | None = None,
        test: str | None = None,
        predict: str | None = None,
        columns: Columns | None = None,
        read: ReadOptions | None = None,
        val_ratio: float = 0.0,
        test_ratio: float = 0.0,
        split_seed: int = 42,
        folds: int | None = None,
        fold: int = 0,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        max_length: int = 128,
        text_prefix: str = "",
        swap_pairs: bool = False,
        group_by_length: bool = True,
        num_workers: int = 0,
        cache_tokens: bool = True,
        trim_vocab: bool = False,
        vocab_corpus: list[str] | None = None,
        backbone: str = "e5-small",
        objective: Objective = "regression",
        pair_encoding: PairEncoding = "cross",
        label_names: list[str] | None = None,
        score_range: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        self.columns = columns or Columns()
        self.read = read or ReadOptions()
        # saved as plain dicts so checkpoints load with `torch.load(weights_only=True)`; the resolved
        # label names and score range are saved by the model, which Lightning requires to agree
        self.save_hyperparameters(ignore=["columns", "read", "label_names", "score_range"])
        self.hparams.update(columns=asdict(self.columns), read=asdict(self.read))
        self.spec = EncodingSpec(pair_encoding, max_length, text_prefix)
        self._given_label_names = label_names
        self._given_score_range = score_range
        self.datasets: dict[str, EncodedDataset] = {}
        self.examples: dict[str, list[SequenceExample]] = {}

    # ---- what the model needs to know before it is built -------------------------------------------
    @cached_property
    def label_names(self) -> list[str] | None:
        if self.hparams.objective == "regression":
            return None
        if self._given_label_names:
            return list(self._given_label_names)
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
        if self._given_score_range:
            return tuple(self._given_score_range)
        if not self.hparams.train:
            raise DataError("a regression task needs `score_range` or a `train` file to read it from")
        scores = [float(ex.label) for ex in self._load(self.hparams.train)]
        if min(scores) == max(scores):
            raise DataError(f"every label is {scores[0]}: nothing to learn", self.hparams.train)
        return (min(scores), max(scores))

    @cached_property
    def backbone_dir(self) -> str:
        """The backbone folder: as named, or cut to the pieces the training and validation texts (and
        `vocab_corpus`, plain-text files) use when `trim_vocab` is set: e5-small goes from 118M to ~30M
        parameters, and every one of those texts tokenizes exactly as before."""
        if not self.hparams.trim_vocab:
            return str(resolve_backbone(self.hparams.backbone))
        splits = self._splits("fit")
        texts = [t for exs in splits.values() for ex in exs for t in (ex.text, ex.text_pair) if t is not None]
        for path in self.hparams.vocab_corpus or []:
            texts += [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        return str(trimmed_backbone(self.hparams.backbone, [self.spec.text_prefix + t for t in texts]))

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return AutoTokenizer.from_pretrained(self.backbone_dir)

    # ---- Lightning hooks ----------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Once per machine: convert the backbone, validate every file, tokenize into the cache."""
        self.backbone_dir  # noqa: B018 - converts (and trims) once, before any process needs it
        for split in ("fit", "test", "predict"):
            if self.has_split(split):
                self._splits(split)

    def setup(self, stage: str) -> None:
        for split, examples in self._splits(stage).items():
            self.examples[split] = examples
            self.datasets[split] = self._encode(examples, with_targets=split != "predict")

    # ---- internals -----------------------------------------------------------------------------------
    def has_split(self, stage: str) -> bool:
        """Whether the recipe gives data for a stage (`fit`, `validate`, `test`, `predict`)."""
        h = self.hparams
        return {
            "fit": bool(h.train),
            "validate": bool(h.val or (h.train and (h.val_ratio or h.folds))),
            "test": bool(h.test or (h.train and h.test_ratio)),
            "predict": bool(h.predict),
        }[stage]

    def _load(self, path: str, with_labels: bool = True) -> list[SequenceExample]:
        return load_sequence_examples(path, self.columns, self.hparams.objective, self.read, with_labels)

    def _splits(self, stage: str) -> dict[str, list[SequenceExample]]:
        """Validated examples for a stage; ratio splits are carved from `train` with `split_seed`."""
        h = self.hparams
        if stage == "predict":
            if not h.predict:
                raise DataError("nothing to predict: set `data.predict` to a file")
            return {"predict": self._load(h.predict, with_labels=False)}
        train = self._load(h.train) if h.train else []
        rest = train
        splits: dict[str, list[SequenceExample]] = {}
        for name, path, ratio, salt in (("test", h.test, h.test_ratio, 1), ("val", h.val, h.val_ratio, 0)):
            if path:
                splits[name] = self._load(path)
                check_known_labels(splits[name], self.label_names or [], path, h.objective, self.columns.label)
            elif ratio and rest:
                kept, held = seeded_split(len(rest), ratio, h.split_seed + salt)
                splits[name] = [rest[i] for i in held]
                rest = [rest[i] for i in kept]
        if h.folds:
            splits["val"], rest = self._fold(rest)
        splits["train"] = rest
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}[stage]
        for name in wanted:
            if not splits.get(name):
                if name == "val" and stage == "fit":
                    continue  # training without validation is allowed
                raise DataError(f"no {name} data: set `data.{name}` or `data.{name}_ratio`")
        out = {name: splits[name] for name in wanted if splits.get(name)}
        if "train" in out and h.swap_pairs and self.columns.text_pair:
            # (A, B) and (B, A) carry the same label for symmetric tasks such as STS
            out["train"] = out["train"] + [
                SequenceExample(ex.text_pair, ex.text, ex.label, ex.id, ex.line) for ex in out["train"]
            ]
        return out

    def _fold(self, examples: list[SequenceExample]) -> tuple[list[SequenceExample], list[SequenceExample]]:
        """k-fold: fold `fold` of a seeded permutation validates, the other k - 1 train."""
        h = self.hparams
        if h.val or h.val_ratio:
            raise DataError("set either `data.folds` or `data.val` / `data.val_ratio`: the folds provide validation")
        if not 0 <= h.fold < h.folds:
            raise DataError(f"`data.fold` is {h.fold}; with {h.folds} folds it must be 0 … {h.folds - 1}")
        order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(h.split_seed)).tolist()
        n = len(order)
        held = set(order[h.fold * n // h.folds : (h.fold + 1) * n // h.folds])
        return [examples[i] for i in sorted(held)], [ex for i, ex in enumerate(examples) if i not in held]

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

    def _encode(self, examples: list[SequenceExample], with_targets: bool) -> EncodedDataset:
        texts = [ex.text for ex in examples]
        pairs = [ex.text_pair for ex in examples] if self.columns.text_pair else None
        features = self._cached(texts, pairs)
        targets = [self._target(ex.label) for ex in examples] if with_targets else None
        return EncodedDataset(features, targets)

    def _cached(self, texts: list[str], pairs: list[str] | None) -> list[dict]:
        """Tokenize once: ids are kept under $N2M_HOME/cache/tokens, keyed by text, spec and tokenizer."""
        if not self.hparams.cache_tokens:
            return encode_texts(self.tokenizer, texts, pairs, self.spec)
        return cached_tokens(
            self.tokenizer,
            [texts, pairs, asdict(self.spec)],
            lambda: encode_texts(self.tokenizer, texts, pairs, self.spec),
        )

    def _collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = collate_features([it["features"] for it in items], self.tokenizer.pad_token_id)
        batch["index"] = torch.tensor([it["index"] for it in items])
        if "target" in items[0]:
            dtype = torch.long if self.hparams.objective == "classification" else torch.float
            batch["target"] = torch.tensor([it["target"] for it in items], dtype=dtype)
        return batch
