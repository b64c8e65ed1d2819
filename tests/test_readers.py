"""Readers and validation: every bad-input case fails before training, naming file, line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from n2m.errors import DataError
from n2m.shapes.n21.examples import Columns, ReadOptions, check_known_labels, load_sequence_examples

DATA = Path(__file__).resolve().parents[1] / "data"
STS = Columns(text="sentence1", text_pair="sentence2", label="score", id="id")


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_korsts_reads_quotes_as_text() -> None:
    examples = load_sequence_examples(DATA / "korsts/sts-train.tsv", STS, "regression")
    assert len(examples) == 5749
    assert any('"' in ex.text or '"' in (ex.text_pair or "") for ex in examples)
    assert examples[0].label == 5.0 and examples[0].id == "0001"
    assert load_sequence_examples(DATA / "korsts/sts-test.tsv", STS, "regression").__len__() == 1379


def test_headerless_stsb_with_extra_columns() -> None:
    names = ["genre", "file", "year", "id", "score", "sentence1", "sentence2"]
    examples = load_sequence_examples(
        DATA / "stsb_en/sts-train.csv", STS, "regression", ReadOptions(format="tsv", header=False, column_names=names)
    )
    assert len(examples) == 5749
    assert examples[0].text == "A plane is taking off."


def test_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path, "a.tsv", "sentence1\tscore\n가\t1.0\n")
    with pytest.raises(DataError) as err:
        load_sequence_examples(path, STS, "regression")
    message = str(err.value)
    assert "a.tsv, line 1, column 'sentence2': missing column 'sentence2'; the header has" in message


def test_empty_text(tmp_path: Path) -> None:
    path = write(tmp_path, "a.tsv", "sentence1\tsentence2\tscore\n가\t나\t1\n다\t \t2\n")
    with pytest.raises(DataError, match=r"a\.tsv, line 3, column 'sentence2': empty text"):
        load_sequence_examples(path, STS, "regression")


def test_regression_label_not_a_number(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "sentence1,sentence2,score\n가,나,1.5\n다,라,high\n")
    with pytest.raises(DataError, match=r"line 3, column 'score': label 'high' is not a number"):
        load_sequence_examples(path, STS, "regression")


def test_label_never_seen_in_training(tmp_path: Path) -> None:
    cols = Columns(text="text", label="label")
    val = write(tmp_path, "val.jsonl", '{"text": "a", "label": "pos"}\n{"text": "b", "label": "meh"}\n')
    examples = load_sequence_examples(val, cols, "classification")
    with pytest.raises(DataError, match=r"val\.jsonl, line 2, column 'label': label 'meh' never appears"):
        check_known_labels(examples, ["neg", "pos"], val, "classification", "label")


def test_wrong_encoding_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "cp949.tsv", b"sentence1\tsentence2\tscore\n" + "가\t나\t1\n".encode("cp949"))
    with pytest.raises(DataError, match=r"cp949\.tsv, line 2: is not valid UTF-8.*iconv"):
        load_sequence_examples(path, STS, "regression")


def test_short_row_names_missing_cell(tmp_path: Path) -> None:
    path = write(tmp_path, "a.tsv", "sentence1\tsentence2\tscore\n가\t나\n")
    with pytest.raises(DataError, match=r"line 2, column 'score': has 2 cells, expected 3"):
        load_sequence_examples(path, STS, "regression")


def test_jsonl_bad_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", label: 1}\n')
    with pytest.raises(DataError, match=r"a\.jsonl, line 2: is not valid JSON"):
        load_sequence_examples(path, Columns(), "classification")


def test_json_list_reports_object_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, "a.json", '[\n  {"premise": "a", "hypothesis": "b", "gold_label": "x"},\n  {"premise": "c"}\n]'
    )
    cols = Columns(text="premise", text_pair="hypothesis", label="gold_label")
    with pytest.raises(DataError, match=r"a\.json, line 3, column 'hypothesis': missing column"):
        load_sequence_examples(path, cols, "classification")


def test_klue_nli_json_list() -> None:
    cols = Columns(text="premise", text_pair="hypothesis", label="gold_label", id="guid")
    examples = load_sequence_examples(DATA / "klue_nli/klue-nli-v1.1_dev.json", cols, "classification")
    assert len(examples) == 3000
    assert {ex.label for ex in examples} == {"entailment", "neutral", "contradiction"}


def test_multilabel_labels_split(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'text,label\nhello,"b,a"\n')
    (example,) = load_sequence_examples(path, Columns(), "multilabel")
    assert example.label == ("a", "b")


def test_missing_file_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_sequence_examples(tmp_path / "nope.tsv", STS, "regression")
    path = write(tmp_path, "a.parquet", "x")
    with pytest.raises(DataError, match="cannot tell the format"):
        load_sequence_examples(path, STS, "regression")
