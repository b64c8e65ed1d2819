"""N2N data: sentences with a tag per unit (word or character) → subword ids + where each unit is read from.

`TokenDataModule` fills in the hooks of `ShapeDataModule` (which owns the backbone, seeded splits, the token
cache and the length-grouped loaders); what is its own is the example (a text, its units' character offsets
and their tags), the label set read from the training split, and the encoding (each unit is mapped to the
subword token holding its first character, see `encoding.encode_units`).
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import torch

from n2m.core.batching import pad_id
from n2m.core.card import MAX_LENGTH
from n2m.core.datamodule import DataSpec, EncodedDataset, ShapeDataModule
from n2m.errors import DataError
from n2m.readers import detect_format, read_records
from n2m.shapes.n2n.encoding import collate_units, encode_units
from n2m.shapes.n2n.examples import TokenExample, Unit, load_token_examples
from n2m.shapes.n2n.spans import entity_types

Scheme = Literal["bio", "tags"]
TOKEN_FORMATS = ("conll", "klue-ner", "conllu", "klue-dp")
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")  # a `predict` file of raw texts in a `text` column


class TokenDataModule(ShapeDataModule):
    """Data for N2N tasks (a tag per word or per character: named entities, POS).

    Splits come from separate files, from a committed `split_file` (JSON `{"train": [ids], "val": [...],
    "test": [...]}` over the sentence ids of `train`), or from seeded ratio splits of `train`. `format` names
    the reader (`conll`, `klue-ner`, `conllu`, `klue-dp`; `tag_column` picks `upos` / `xpos` for CoNLL-U);
    `predict` may also be a plain table (CSV / TSV / JSONL) with a `text` column, split into units as the
    training data was (characters for KLUE-NER, whitespace-separated words otherwise).

    Args:
        backbone: short name (`e5-small`, `minilm-l6`), local HF folder, or hub id (needs a fast tokenizer).
        trim_vocab: cut the backbone's vocabulary to the pieces the train and val texts use.
        scheme: `bio` (entities as B-/I-/O tags; scored by entity P/R/F1, seqeval's default mode) or `tags`
            (one tag per unit, e.g. POS; scored by accuracy).
        max_length: tokens of a sentence, start and end (and `text_prefix`) included; later units are not read.
        text_prefix: put before every text for the tokenizer (e.g. e5's "query: "); units still map to the
            tokens of the text itself.
        label_names: tags in head order; by default read from the training split (for `bio`: `O`, then `B-X`,
            `I-X` for every type seen).
        unit: `word` or `char`, what the data labels; by default what the training file's reader says.
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
        max_length: int = MAX_LENGTH,
        text_prefix: str = "",
        group_by_length: bool | int = True,
        num_workers: int = 0,
        cache_tokens: bool = True,
        trim_vocab: bool = False,
        backbone: str = "e5-small",
        scheme: Scheme = "bio",
        label_names: list[str] | None = None,
        unit: Unit | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.loaded: dict[tuple[str, str | None, bool], list[TokenExample]] = {}

    # ---- what the model needs to know before it is built -------------------------------------------
    @property
    def spec(self) -> DataSpec:
        h = self.hparams
        return DataSpec(
            shape="N2N",
            task=h.scheme,
            inputs=["text"],
            backbone=h.backbone,
            backbone_dir=self.backbone_dir,
            encoding=self.encoding,
            labels=list(self.label_names),
            settings={"unit": self.unit},
        )

    @cached_property
    def unit(self) -> Unit:
        """`char` when the training data labels characters (KLUE-NER), else `word`."""
        if self.hparams.unit:
            return self.hparams.unit
        source = self.hparams.train or self.hparams.test or self.hparams.val
        if not source:
            return "word"
        first = next(iter(read_records(source, self.hparams.format, **self.read_options())), None)
        return first.fields.get("unit", "word") if first else "word"

    @cached_property
    def label_names(self) -> list[str]:
        """Given, or the training split's tags: for BIO, `O` then `B-X`, `I-X` for every type seen."""
        if self.hparams.label_names:
            return list(self.hparams.label_names)
        if not self.hparams.train:
            raise DataError("an N2N task needs `label_names` or a `train` file to read them from")
        # the training split's tags only (a split file or ratio split carves it from `train`)
        tags = {t for ex in self.read_splits("fit")["train"] for t in ex.tags or ()}
        if self.hparams.scheme == "bio":
            bad = sorted(t for t in tags if t != "O" and not re.match(r"^[BI]-.+", t))
            if bad:
                raise DataError(
                    f"tags {bad[:5]} are not BIO tags (O, B-TYPE, I-TYPE)",
                    self.hparams.train,
                    hint="set `data.scheme: tags` for tagging tasks such as POS",
                )
            return ["O"] + [f"{p}-{t}" for t in entity_types(sorted(tags)) for p in "BI"]
        return sorted(tags)

    # ---- the hooks of ShapeDataModule ---------------------------------------------------------------
    def read_splits(self, stage: str) -> dict[str, list[TokenExample]]:
        h = self.hparams
        if stage == "predict":
            if not h.predict:
                return self.select({}, stage)
            table = Path(h.predict).suffix in TABLE_SUFFIXES
            fmt = h.predict_format or (detect_format(h.predict) if table else h.format)
            return self.select({"predict": self.load(h.predict, with_tags=False, format=fmt)}, stage)
        train = self.load(h.train) if h.train else []
        given = {"val": self.load(h.val) if h.val else None, "test": self.load(h.test) if h.test else None}
        if h.split_file and train:  # an explicit val or test file wins over the split file
            splits = {**self.from_split_file(train), **{k: v for k, v in given.items() if v is not None}}
        else:
            splits = self.carve_train(train, given)
        return self.select(splits, stage)

    def vocabulary_texts(self) -> list[str]:
        prefix = self.hparams.text_prefix  # tokenized with every text, so it must keep its pieces too
        return [prefix + ex.text for exs in self.read_splits("fit").values() for ex in exs]

    def encode(self, examples: list[TokenExample], with_targets: bool) -> EncodedDataset:
        labels = [self.tag_ids(ex) for ex in examples] if with_targets else None
        encoding = self.encoding
        key = ["n2n", encoding.max_length, encoding.text_prefix, [(ex.text, ex.units) for ex in examples]]
        features = self.cached(key, lambda: encode_units(self.tokenizer, examples, encoding))
        return EncodedDataset(features, labels, [len(f["input_ids"]) for f in features])

    def collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        labels = [it["target"] for it in items] if "target" in items[0] else None
        batch = collate_units([it["features"] for it in items], labels, pad_id(self.tokenizer))
        batch["index"] = torch.tensor([it["index"] for it in items])
        return batch

    # ---- reading -------------------------------------------------------------------------------------
    def read_options(self) -> dict[str, Any]:
        return {"tag_column": self.hparams.tag_column} if self.hparams.format == "conllu" else {}

    def load(self, path: str, with_tags: bool = True, format: str | None = None) -> list[TokenExample]:
        """A file's examples, read and validated once however many splits and properties ask."""
        fmt = format or self.hparams.format
        key = (path, fmt, with_tags)
        if key not in self.loaded:
            options = self.read_options() if fmt == self.hparams.format else {}
            self.loaded[key] = load_token_examples(path, fmt, with_tags, self.unit, **options)
        return self.loaded[key]

    def from_split_file(self, examples: list[TokenExample]) -> dict[str, list[TokenExample]]:
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

    def tag_ids(self, ex: TokenExample) -> list[int]:
        """The head index of each unit's tag; -1 for a POS tag never seen in training (scored as wrong)."""
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
                    hint="add it to `data.label_names` or fix the tag",
                )
        return labels


DataModule = TokenDataModule
