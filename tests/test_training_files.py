"""Training files that are valid but unusual, and rows that are wrong in ways a reader must not let through:
each is read exactly, or refused with the file, line and column and what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from n2m.errors import DataError
from n2m.readers import read_records
from n2m.shapes.n21.data import TextDataModule
from n2m.shapes.n21.examples import Columns, load_sequence_examples

STS = Columns(text="sentence1", text_pair="sentence2", label="score")
# characters `str.splitlines` takes for line breaks, which TSV, CSV and JSON Lines do not
NOT_LINE_BREAKS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.mark.parametrize("char", NOT_LINE_BREAKS)
def test_a_field_may_hold_any_character_but_a_line_break(tmp_path, char):
    inside = f"활용{char}사생활"
    tsv = write(tmp_path, "a.tsv", f"sentence1\tsentence2\tscore\n{inside}\t둘\t1.0\n셋\t넷\t2.0\n")
    rows = list(read_records(tsv))
    assert [(r.line, r.fields["sentence1"]) for r in rows] == [(2, inside), (3, "셋")]
    jsonl = write(tmp_path, "a.jsonl", "\n".join(json.dumps({"text": t}, ensure_ascii=False) for t in (inside, "셋")))
    assert [(r.line, r.fields["text"]) for r in read_records(jsonl)] == [(1, inside), (2, "셋")]


def test_windows_and_old_mac_line_ends_still_end_lines(tmp_path):
    path = write(tmp_path, "a.tsv", "sentence1\tsentence2\tscore\r\n가\t나\t1\r다\t라\t2\n")
    assert [(r.line, r.fields["sentence1"]) for r in read_records(path)] == [(2, "가"), (3, "다")]


@pytest.mark.parametrize("name", ["a.tsv", "a.jsonl"])
def test_a_nul_character_is_refused_where_it_is(tmp_path, name):
    if name.endswith(".tsv"):
        path = write(tmp_path, name, "sentence1\tsentence2\tscore\n가\t나\t1\n다\t라\x00마\t2\n")
    else:
        path = write(tmp_path, name, '{"sentence1": "가", "sentence2": "나", "score": 1}\n'
                                     '{"sentence1": "다", "sentence2": "라\\u0000마", "score": 2}\n')  # fmt: skip
    with pytest.raises(DataError, match=rf"{name}, line [23], column 'sentence2': contains a NUL character") as err:
        load_sequence_examples(path, STS, "regression")
    assert "(remove it; " in str(err.value)


def test_a_truncated_json_line_says_where_and_why(tmp_path):
    path = write(tmp_path, "a.jsonl", '{"text": "가", "label": "x"}\n{"text": "나", "label":\n')
    with pytest.raises(DataError, match=r"a\.jsonl, line 2: .*character 23.*the line ends too early") as err:
        list(read_records(path))
    assert "one complete JSON object per line" in str(err.value)


def sts_data(tmp_path: Path, train_rows: list[str], val_rows: list[str]) -> TextDataModule:
    head = "sentence1\tsentence2\tscore\n"
    train = write(tmp_path, "train.tsv", head + "\n".join(train_rows) + "\n")
    val = write(tmp_path, "dev.tsv", head + "\n".join(val_rows) + "\n")
    return TextDataModule(train=str(train), val=str(val), columns=STS, score_range=(0.0, 5.0), cache_tokens=False)


@pytest.mark.parametrize("split", ["train", "val"])
def test_a_score_outside_the_score_range_is_refused(tmp_path, split):
    good, bad = ["가\t나\t1.0", "다\t라\t4.5"], ["가\t나\t1.0", "다\t라\t7.5"]
    data = sts_data(tmp_path, bad if split == "train" else good, bad if split == "val" else good)
    name = "train.tsv" if split == "train" else "dev.tsv"
    with pytest.raises(
        DataError, match=rf"{name}, line 3, column 'score': score 7\.5 is outside score_range \[0\.0, 5\.0\]"
    ):
        data.read_splits("fit")


def test_a_column_missing_from_the_header_is_reported_at_the_header(tmp_path):
    path = write(tmp_path, "a.tsv", "sentence1\tsentence2\tlabel\n가\t나\t1\n")
    with pytest.raises(DataError, match=r"a\.tsv, line 1, column 'score': missing label column 'score'") as err:
        load_sequence_examples(path, STS, "regression")
    assert "the header has ['label', 'sentence1', 'sentence2']" in str(err.value)


def test_a_text_with_nothing_visible_is_empty_in_training_files_too(tmp_path):
    path = write(tmp_path, "a.tsv", "sentence1\tsentence2\tscore\n가\t나\t1\n\u200b\ufeff\t라\t2\n")
    with pytest.raises(DataError, match=r"a\.tsv, line 3, column 'sentence1': empty text"):
        load_sequence_examples(path, STS, "regression")
