"""Write the fixed splits of the N2M recipes (run once; the output is committed) and what changed, with why.

data/splits/ko-en.json        (recipes/ko-en-translation.yaml: news, JHE and Tatoeba pooled)
data/splits/ko-chatbot.json   (recipes/ko-chatbot.yaml: ChatbotData.csv)
    Written by the DataModule's own rule (`n2m.shapes.n2m.data.write_split_file`, the rule a recipe with a
    missing split file uses): per file, the recipe's test then validation ratio by its seed, carved over groups
    of rows that share a source or a reference text (NFC, spacing and case ignored; punctuation kept), so no
    source and no reference of validation or test is in train, and none of test in validation. No row is
    dropped: a row that shared a text with another split now sits in one split with it.
data/splits/DEDUPE.json
    Per recipe: the split sizes before (rows carved one by one, the earlier rule) and after; how many
    validation and test rows had a source or a reference also in train (or, for test, in validation) before,
    and after (zero); how many rows changed split and how many were removed (none).

python scripts/make_seq2seq_splits.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from n2m.core.splits import carve
from n2m.shapes.n2m.data import Seq2SeqDataModule, text_key, write_split_file
from n2m.shapes.n2m.examples import Seq2SeqColumns, Seq2SeqExample

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("ko-en-translation", "ko-chatbot")
REPORT = ROOT / "data/splits/DEDUPE.json"
Splits = dict[str, list[Seq2SeqExample]]


def row_by_row(by_file: dict[str, list[Seq2SeqExample]], data: dict[str, Any]) -> Splits:
    """The earlier rule: each file's rows carved one by one, texts shared across splits or not."""
    out: Splits = {"train": [], "val": [], "test": []}
    for examples in by_file.values():
        for name, rows in carve(examples, data["test_ratio"], data["val_ratio"], data["split_seed"]).items():
            out[name] += rows
    return out


def overlap(splits: Splits) -> dict[str, dict[str, int]]:
    """Rows of a held-out split whose source, or a reference, is also a text of an earlier split."""

    def texts(name: str) -> tuple[set[str], set[str]]:
        rows = splits[name]
        return {text_key(ex.source) for ex in rows}, {text_key(r) for ex in rows for r in ex.references}

    out = {}
    for name, earlier in (("val", ("train",)), ("test", ("train", "val"))):
        for other in earlier:
            sources, references = texts(other)
            source = [text_key(ex.source) in sources for ex in splits[name]]
            reference = [any(text_key(r) in references for r in ex.references) for ex in splits[name]]
            out[f"{name}_in_{other}"] = {
                "source": sum(source),
                "reference": sum(reference),
                "either": sum(s or r for s, r in zip(source, reference, strict=True)),
            }
    return out


def place(splits: Splits) -> dict[tuple[str, int], str]:
    return {(ex.file, ex.line): name for name, rows in splits.items() for ex in rows}


def one_recipe(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / f"recipes/{name}.yaml").read_text(encoding="utf-8"))["data"]
    module = Seq2SeqDataModule(train=data["train"], columns=Seq2SeqColumns(**data["columns"]),
                               split_file=data["split_file"], val_ratio=data["val_ratio"],
                               test_ratio=data["test_ratio"], split_seed=data["split_seed"])  # fmt: skip
    pool = module.read_files("train")
    by_file: dict[str, list[Seq2SeqExample]] = {}
    for ex in pool:
        by_file.setdefault(ex.file, []).append(ex)
    before = row_by_row(by_file, data)
    write_split_file(Path(data["split_file"]), by_file, data["val_ratio"], data["test_ratio"], data["split_seed"])
    after = module.apply_split_file(pool)
    left = overlap(after)
    if any(count for counts in left.values() for count in counts.values()):
        raise SystemExit(f"{name}: a text is still in two splits: {left}")
    moved = place(before).items() - place(after).items()
    print(f"{data['split_file']}: {', '.join(f'{k} {len(v)}' for k, v in after.items())}; {len(moved)} rows moved")
    return {
        "split_file": data["split_file"],
        "rows": len(pool),
        "before": {"sizes": {k: len(v) for k, v in before.items()}, "shared_texts": overlap(before)},
        "after": {"sizes": {k: len(v) for k, v in after.items()}, "shared_texts": left},
        "rows_moved": len(moved),
        "rows_removed": 0,
    }


def main() -> None:
    os.chdir(ROOT)  # the recipes name their files relative to the repository, and so do the split files
    report = {
        "about": (
            "Held-out rows that shared a text with an earlier split, before (rows carved one by one) and after "
            "(carved over groups of rows sharing a source or a reference; NFC, spacing and case ignored, "
            "punctuation kept). `val_in_train.source`: validation rows whose source is also a training source; "
            "`reference`: whose reference is also a training reference; `either`: rows with one or both. "
            "No row is removed: a group moves whole into one split. Written by scripts/make_seq2seq_splits.py."
        ),
        "recipes": {name: one_recipe(name) for name in RECIPES},
    }
    REPORT.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"{REPORT.relative_to(ROOT)} written")


if __name__ == "__main__":
    main()
