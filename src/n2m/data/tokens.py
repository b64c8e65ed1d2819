"""N2N data: sentences with a tag per unit (word or character) → subword ids + where each unit is read from.

`TokenDataModule` mirrors `TextDataModule` (same samplers, seeded splits, vocabulary trimming, token cache
under `$N2M_HOME/cache/tokens`); what differs is the example (a text, its units' character offsets and their
tags) and the encoding (each unit is mapped to the subword token holding its first character, see
`n2m.spans.align_units_to_tokens`).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import Dataset
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from n2m.backbones import resolve_backbone, trimmed_backbone
from n2m.data.datamodule import cached_tokens, seeded_split
from n2m.data.encoding import pad_sequences
from n2m.data.loaders import BatchedDataModule
from n2m.errors import DataError
from n2m.readers import Record, detect_format, read_records
from n2m.spans import align_units_to_tokens, entity_types

Scheme = Literal["bio", "tags"]
Unit = Literal["word", "char"]
TOKEN_FORMATS = ("conll", "klue-ner", "conllu", "klue-dp")


@dataclass(frozen=True)
class TokenExample:
    """One sentence: its text, its units as `[start, end)` character offsets, and their tags (None to predict)."""

    text: str
    units: tuple[tuple[int, int], ...]
    tags: tuple[str, ...] | None = None
    id: str | None = None
    line: int = 0
    tag_lines: tuple[int, ...] = ()  # the file line of each unit, for error messages
    path: str = ""


def split_units(text: str, unit: Unit) -> list[tuple[int, int]]:
    """Units of a raw text: every character, or every run of non-space characters (a word)."""
    if unit == "char":
        return [(i, i + 1) for i in range(len(text))]
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def _nfc_kept(text: str) -> str:
    """NFC-normalized text, or the text itself when normalizing would change its length (offsets must hold)."""
    normalized = unicodedata.normalize("NFC", text)
    return normalized if len(normalized) == len(text) else text


def records_to_token_examples(records: Sequence[Record], with_tags: bool, unit: Unit) -> list[TokenExample]:
    examples = []
    for record in records:
        fields = record.fields
        if "offsets" in fields:  # a sentence format: units and tags as the file gives them
            text, units = _nfc_kept(fields["text"]), tuple(tuple(o) for o in fields["offsets"])
            tags = tuple(fields["tags"]) if with_tags else None
            lines = tuple(fields.get("token_lines") or ())
        else:  # a table of raw texts to predict
            if "text" not in fields:
                raise DataError(f"missing column 'text'; the row has {sorted(fields)}", record.path, record.line)
            text = _nfc_kept(str(fields["text"]))
            units, tags, lines = tuple(split_units(text, unit)), None, ()
            if with_tags:
                raise DataError("a table has no tags to train on: use a sentence format", record.path, record.line)
        if not units:
            raise DataError("empty sentence", record.path, record.line)
        id_ = fields.get("id")
        id_ = str(id_) if id_ is not None else None
        examples.append(TokenExample(text, units, tags, id_, record.line, lines, record.path))
    return examples


def load_token_examples(
    path: str | Path, format: str | None, with_tags: bool = True, unit: Unit = "word", **options: Any
) -> list[TokenExample]:
    records = list(read_records(path, format, **options))
    if not records:
        raise DataError("has no sentences", path)
    return records_to_token_examples(records, with_tags, unit)


def encode_units(
    tokenizer: PreTrainedTokenizerBase, examples: Sequence[TokenExample], max_length: int
) -> list[dict[str, list[int]]]:
    """Subword ids of each text, and for each unit the token it is read from and its offset bucket there."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("N2N tasks need a fast tokenizer (character offsets come from `return_offsets_mapping`)")
    texts = [ex.text for ex in examples]
    encoded = tokenizer(texts, truncation=True, max_length=max_length, return_offsets_mapping=True)
    features = []
    for i, ex in enumerate(examples):
        unit_token, unit_bucket = align_units_to_tokens(ex.text, ex.units, encoded["offset_mapping"][i])
        features.append({"input_ids": encoded["input_ids"][i], "unit_token": unit_token, "unit_bucket": unit_bucket})
    return features


def collate_units(
    features: Sequence[dict[str, list[int]]], labels: Sequence[list[int]] | None, pad_id: int
) -> dict[str, torch.Tensor]:
    """Dynamic padding of tokens and of units; a unit with no token (`unit_token` -1) is masked out."""
    batch = pad_sequences([{"input_ids": f["input_ids"]} for f in features], pad_id)
    longest = max(len(f["unit_token"]) for f in features)
    batch["unit_token"] = torch.tensor([f["unit_token"] + [-1] * (longest - len(f["unit_token"])) for f in features])
    batch["unit_bucket"] = torch.tensor([f["unit_bucket"] + [0] * (longest - len(f["unit_bucket"])) for f in features])
    batch["num_units"] = torch.tensor([len(f["unit_token"]) for f in features])
    if labels is not None:
        # -100: padding; -1: a tag the model does not know (scored as wrong, never trained on)
        batch["labels"] = torch.tensor([list(row) + [-100] * (longest - len(row)) for row in labels])
    return batch


class TokenDataset(Dataset):
    def __init__(self, features: list[dict], labels: list[list[int]] | None) -> None:
        self.features = features
        self.labels = labels
        self.lengths = [len(f["input_ids"]) for f in features]

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = {"features": self.features[index], "index": index}
        if self.labels is not None:
            item["labels"] = self.labels[index]
        return item


def make_split(ids: Sequence[str], val_ratio: float, test_ratio: float, seed: int) -> dict[str, list[str]]:
    """Train / val / test ids carved with `seeded_split` exactly as `TokenDataModule` carves ratio splits
    (test first with `seed + 1`, then val from the rest with `seed`), to be written to a split file."""
    rest = list(ids)
    out: dict[str, list[str]] = {}
    for name, ratio, salt in (("test", test_ratio, 1), ("val", val_ratio, 0)):
        if ratio:
            kept, held = seeded_split(len(rest), ratio, seed + salt)
            out[name] = [rest[i] for i in held]
            rest = [rest[i] for i in kept]
    out["train"] = rest
    return out


class TokenDataModule(BatchedDataModule):
    """Data for N2N tasks (a tag per word or per character: named entities, POS).

    Splits come from separate files, from a committed `split_file` (JSON `{"train": [ids], "val": [...],
    "test": [...]}` over the sentence ids of `train`), or from seeded ratio splits of `train`. `format` names
    the reader (`conll`, `klue-ner`, `conllu`, `klue-dp`; `tag_column` picks `upos` / `xpos` for CoNLL-U);
    `predict` may also be a plain table (CSV / TSV / JSONL) with a `text` column, split into units as the
    training data was (characters for KLUE-NER, whitespace-separated words otherwise).
    `backbone` and `scheme` come from the model; `label_names`, `backbone_dir` and `unit` go to it.
    """

    def __init__(
        self,
        train: str | None = None,
        val: str | None = None,
        test: str | None = None,
        predict: str | None = None,
        format: str | None = None,
        predict_format: str | None = None,
        tag_column: Literal["upos", "xpos"] = "upos",
        split_file: str | None = None,
        val_ratio: float = 0.0,
        test_ratio: float = 0.0,
        split_seed: int = 42,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        max_length: int = 128,
        group_by_length: bool = True,
        num_workers: int = 0,
        cache_tokens: bool = True,
        trim_vocab: bool = False,
        backbone: str = "e5-small",
        scheme: Scheme = "bio",
        label_names: list[str] | None = None,
        unit: Unit | None = None,
    ) -> None:
        super().__init__()
        # the resolved label names and unit are saved by the model, which Lightning requires to agree
        self.save_hyperparameters(ignore=["label_names", "unit"])
        self._given_label_names = label_names
        self._given_unit = unit
        self.datasets: dict[str, TokenDataset] = {}
        self.examples: dict[str, list[TokenExample]] = {}
        self._loaded: dict[tuple, list[TokenExample]] = {}

    # ---- what the model needs to know before it is built -------------------------------------------
    @cached_property
    def unit(self) -> Unit:
        """`char` when the training data labels characters (KLUE-NER), else `word`."""
        if self._given_unit:
            return self._given_unit
        source = self.hparams.train or self.hparams.test or self.hparams.val
        if not source:
            return "word"
        first = next(iter(read_records(source, self.hparams.format, **self._read_options())), None)
        return first.fields.get("unit", "word") if first else "word"

    @cached_property
    def label_names(self) -> list[str]:
        """Given, or the training split's tags: for BIO, `O` then `B-X`, `I-X` for every type seen."""
        if self._given_label_names:
            return list(self._given_label_names)
        if not self.hparams.train:
            raise DataError("an N2N task needs `label_names` or a `train` file to read them from")
        # the training split's tags only (a split file or ratio split carves it from `train`)
        tags = {t for ex in self._splits("fit")["train"] for t in ex.tags or ()}
        if self.hparams.scheme == "bio":
            bad = sorted(t for t in tags if t != "O" and not re.match(r"^[BI]-.+", t))
            if bad:
                raise DataError(
                    f"tags {bad[:5]} are not BIO tags (O, B-TYPE, I-TYPE)",
                    self.hparams.train,
                    hint="set `model.scheme: tags` for tagging tasks such as POS",
                )
            return ["O"] + [f"{p}-{t}" for t in entity_types(sorted(tags)) for p in "BI"]
        return sorted(tags)

    @cached_property
    def backbone_dir(self) -> str:
        """The backbone folder, cut to the pieces the training and validation texts use when `trim_vocab`."""
        if not self.hparams.trim_vocab:
            return str(resolve_backbone(self.hparams.backbone))
        texts = [ex.text for exs in self._splits("fit").values() for ex in exs]
        return str(trimmed_backbone(self.hparams.backbone, texts))

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return AutoTokenizer.from_pretrained(self.backbone_dir)

    # ---- Lightning hooks ----------------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.backbone_dir  # noqa: B018 - converts (and trims) once, before any process needs it
        for stage in ("fit", "test", "predict"):
            if self.has_split(stage):
                self._splits(stage)

    def setup(self, stage: str) -> None:
        for split, examples in self._splits(stage).items():
            self.examples[split] = examples
            labels = [self._labels(ex) for ex in examples] if split != "predict" else None
            self.datasets[split] = TokenDataset(self._cached(examples), labels)

    def has_split(self, stage: str) -> bool:
        h = self.hparams
        from_train = bool(h.train and h.split_file)
        return {
            "fit": bool(h.train),
            "validate": bool(h.val or from_train or (h.train and h.val_ratio)),
            "test": bool(h.test or from_train or (h.train and h.test_ratio)),
            "predict": bool(h.predict),
        }[stage]

    # ---- internals -----------------------------------------------------------------------------------
    def _read_options(self) -> dict[str, Any]:
        return {"tag_column": self.hparams.tag_column} if self.hparams.format == "conllu" else {}

    def _load(self, path: str, with_tags: bool = True, format: str | None = None) -> list[TokenExample]:
        fmt = format or self.hparams.format
        key = (path, fmt, with_tags)
        if key not in self._loaded:  # read and validated once, however many splits and properties ask
            options = self._read_options() if fmt == self.hparams.format else {}
            self._loaded[key] = load_token_examples(path, fmt, with_tags, self.unit, **options)
        return self._loaded[key]

    def _splits(self, stage: str) -> dict[str, list[TokenExample]]:
        h = self.hparams
        if stage == "predict":
            if not h.predict:
                raise DataError("nothing to predict: set `data.predict` to a file")
            table = Path(h.predict).suffix in (".csv", ".tsv", ".jsonl", ".json")  # raw texts in a `text` column
            fmt = h.predict_format or (detect_format(h.predict) if table else h.format)
            return {"predict": self._load(h.predict, with_tags=False, format=fmt)}
        train = self._load(h.train) if h.train else []
        splits: dict[str, list[TokenExample]] = {}
        if h.split_file and train:
            splits = self._from_split_file(train)
        else:
            rest = train
            for name, path, ratio, salt in (("test", h.test, h.test_ratio, 1), ("val", h.val, h.val_ratio, 0)):
                if path:
                    splits[name] = self._load(path)
                elif ratio and rest:
                    kept, held = seeded_split(len(rest), ratio, h.split_seed + salt)
                    splits[name] = [rest[i] for i in held]
                    rest = [rest[i] for i in kept]
            splits["train"] = rest
        for name, path in (("val", h.val), ("test", h.test)):
            if path and h.split_file:
                splits[name] = self._load(path)  # an explicit file wins over the split file
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}[stage]
        for name in wanted:
            if not splits.get(name) and not (name == "val" and stage == "fit"):
                raise DataError(f"no {name} data: set `data.{name}`, `data.split_file` or `data.{name}_ratio`")
        return {name: splits[name] for name in wanted if splits.get(name)}

    def _from_split_file(self, examples: list[TokenExample]) -> dict[str, list[TokenExample]]:
        path = Path(self.hparams.split_file)
        if not path.is_file():
            raise DataError("split file does not exist", path)
        spec = json.loads(path.read_text(encoding="utf-8"))
        by_id = {ex.id: ex for ex in examples}
        if len(by_id) != len(examples):
            raise DataError("sentence ids are not unique, so a split file cannot name them", self.hparams.train)
        out: dict[str, list[TokenExample]] = {}
        for name in ("train", "val", "test"):
            missing = [i for i in spec.get(name, []) if i not in by_id]
            if missing:
                raise DataError(f"{len(missing)} {name} ids are not in {self.hparams.train}, e.g. {missing[0]!r}", path)
            out[name] = [by_id[i] for i in spec.get(name, [])]
        return out

    def _labels(self, ex: TokenExample) -> list[int]:
        index = {name: i for i, name in enumerate(self.label_names)}
        labels = []
        for u, tag in enumerate(ex.tags or ()):
            if tag in index:
                labels.append(index[tag])
            elif self.hparams.scheme == "tags":
                labels.append(-1)  # a tag never seen in training: cannot be predicted, scored as wrong
            else:
                raise DataError(
                    f"tag {tag!r} never appears in the training data (known: {self.label_names})",
                    ex.path,
                    ex.tag_lines[u] if u < len(ex.tag_lines) else ex.line,
                    hint="add it to `label_names` or fix the tag",
                )
        return labels

    def _cached(self, examples: list[TokenExample]) -> list[dict]:
        """Tokenize once per machine (the token cache every shape shares)."""
        max_length = self.hparams.max_length
        encode = lambda: encode_units(self.tokenizer, examples, max_length)  # noqa: E731
        if not self.hparams.cache_tokens:
            return encode()
        return cached_tokens(self.tokenizer, ["n2n", max_length, [(ex.text, ex.units) for ex in examples]], encode)

    def _collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        labels = [it["labels"] for it in items] if "labels" in items[0] else None
        batch = collate_units([it["features"] for it in items], labels, self.tokenizer.pad_token_id or 0)
        batch["index"] = torch.tensor([it["index"] for it in items])
        return batch
