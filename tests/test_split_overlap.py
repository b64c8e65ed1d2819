"""No held-out text was trained on: the committed N2M splits share no source and no reference across splits,
the FAQ retrieval split shares no question, and the split rule keeps rows linked by a text in one split."""

from __future__ import annotations

import csv
import json
import unicodedata
from pathlib import Path

import pytest
import yaml

from n2m.shapes.n2m.data import Seq2SeqDataModule
from n2m.shapes.n2m.examples import DataFile, Seq2SeqColumns, Seq2SeqExample

ROOT = Path(__file__).resolve().parents[1]
SIZES = {  # what scripts/make_seq2seq_splits.py wrote (data/splits/DEDUPE.json); no row is dropped
    "ko-en-translation": {"train": 4572, "val": 238, "test": 534},
    "ko-chatbot": {"train": 10921, "val": 319, "test": 583},
}


def same(text: str) -> str:
    """Written here, not imported from the rule under test: NFC, spacing and case ignored."""
    return " ".join(unicodedata.normalize("NFC", text).split()).casefold()


def recipe_data(recipe: str, split_file: Path | None = None) -> Seq2SeqDataModule:
    data = yaml.safe_load((ROOT / f"recipes/{recipe}.yaml").read_text(encoding="utf-8"))["data"]
    return Seq2SeqDataModule(train=data["train"], columns=Seq2SeqColumns(**data["columns"]),
                             split_file=str(split_file or data["split_file"]), val_ratio=data["val_ratio"],
                             test_ratio=data["test_ratio"], split_seed=data["split_seed"])  # fmt: skip


def read_splits(data: Seq2SeqDataModule) -> dict[str, list[Seq2SeqExample]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)  # the recipes name their files relative to the repository, and so do the split files
        return {**data.read_splits("fit"), **data.read_splits("test")}


def shared(a: list[Seq2SeqExample], b: list[Seq2SeqExample]) -> dict[str, set[str]]:
    return {
        "source": {same(x.source) for x in a} & {same(x.source) for x in b},
        "reference": {same(r) for x in a for r in x.references} & {same(r) for x in b for r in x.references},
    }


@pytest.mark.parametrize("recipe", sorted(SIZES))
def test_committed_split_shares_no_source_and_no_reference(recipe: str) -> None:
    splits = read_splits(recipe_data(recipe))
    assert {name: len(rows) for name, rows in splits.items()} == SIZES[recipe]
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert shared(splits[a], splits[b]) == {"source": set(), "reference": set()}, (recipe, a, b)


@pytest.mark.parametrize("recipe", sorted(SIZES))
def test_committed_split_is_what_the_split_rule_writes(recipe: str, tmp_path: Path) -> None:
    """Writing the split afresh from the recipe's files, ratios and seed gives the committed bytes, so the split
    survives the code it was written by; DEDUPE.json records the same sizes."""
    recipe_text = (ROOT / f"recipes/{recipe}.yaml").read_text(encoding="utf-8")
    committed = ROOT / yaml.safe_load(recipe_text)["data"]["split_file"]
    fresh = tmp_path / committed.name
    read_splits(recipe_data(recipe, fresh))
    assert fresh.read_bytes() == committed.read_bytes()
    report = json.loads((ROOT / "data/splits/DEDUPE.json").read_text(encoding="utf-8"))["recipes"][recipe]
    assert report["after"]["sizes"] == SIZES[recipe] and report["rows_removed"] == 0
    assert sum(report["before"]["sizes"].values()) == sum(SIZES[recipe].values()) == report["rows"]


def test_rows_linked_by_a_text_stay_in_one_split(tmp_path: Path) -> None:
    """A chain of rows sharing a source or a reference (across files too, and in other case and spacing) is
    carved as one group; distinct rows still split by the ratios."""
    a = tmp_path / "a.tsv"
    b = tmp_path / "b.tsv"
    linked_rows = [("같은 질문", "Same  answer"), ("다른 질문", "same answer")]
    rows_a = [(f"질문 {i}", f"answer {i}") for i in range(40)] + linked_rows
    rows_b = [(f"문장 {i}", f"sentence {i}") for i in range(20)] + [("다른 질문", "a third answer")]
    for path, rows in ((a, rows_a), (b, rows_b)):
        with path.open("w", encoding="utf-8", newline="") as f:
            csv.writer(f, delimiter="\t", lineterminator="\n").writerows([("ko", "en"), *rows])
    linked = {"같은 질문", "다른 질문"}
    for seed in range(8):
        data = Seq2SeqDataModule(
            train=[DataFile(str(a)), DataFile(str(b))], columns=Seq2SeqColumns(source="ko", target="en"),
            split_file=str(tmp_path / f"split{seed}.json"), val_ratio=0.2, test_ratio=0.2, split_seed=seed,
        )  # fmt: skip
        splits = {**data.read_splits("fit"), **data.read_splits("test")}
        homes = {name for name, rows in splits.items() for ex in rows if ex.source in linked}
        assert len(homes) == 1, (seed, homes)
        assert sum(len(rows) for rows in splits.values()) == 63  # nothing dropped
        assert all(splits[name] for name in ("train", "val", "test"))


def test_faq_retrieval_split_shares_no_question() -> None:
    questions = {}
    for name in ("train", "val", "test"):
        with (ROOT / f"data/korean_chatbot/faq/{name}.tsv").open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            questions[name] = {same(row["question"]) for row in reader}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not questions[a] & questions[b], (a, b, sorted(questions[a] & questions[b])[:3])
