"""The N2N readers on the real bundled files, and their errors (file, line, what is wrong)."""

from __future__ import annotations

from pathlib import Path

import pytest

from n2m.errors import DataError
from n2m.readers import READERS, read_records

DATA = Path(__file__).resolve().parents[1] / "data"


def check_offsets(records) -> None:
    for r in records:
        f = r.fields
        assert len(f["tokens"]) == len(f["tags"]) == len(f["offsets"]) == len(f["token_lines"])
        assert [f["text"][a:b] for a, b in f["offsets"]] == f["tokens"]


def test_registered():
    assert {"conll", "klue-ner", "conllu", "klue-dp"} <= set(READERS)


def test_conll_wnut17():
    train = list(read_records(DATA / "wnut17/wnut17train.conll", "conll"))
    test = list(read_records(DATA / "wnut17/emerging.test.annotated", "conll"))
    assert (len(train), len(test)) == (3394, 1287)  # whitespace-only lines separate sentences too
    check_offsets(train)
    first = train[0].fields
    assert first["tokens"][:3] == ["@paulwalk", "It", "'s"] and first["unit"] == "word"
    assert train[0].line == 1
    empire = next(r for r in train if "Empire" in r.fields["tokens"]).fields
    i = empire["tokens"].index("Empire")
    assert empire["tags"][i : i + 3] == ["B-location", "I-location", "I-location"]


def test_klue_ner():
    records = list(read_records(DATA / "klue_ner/klue-ner-v1.1_dev.tsv", "klue-ner"))
    assert len(records) == 5000
    check_offsets(records)
    first = records[0]
    assert first.fields["id"] == "klue-ner-v1_dev_00000-wikitree"
    assert first.line == 6  # the `##` header line of the sentence
    assert first.fields["text"].startswith("경찰은 또 성매매 알선 자금을")
    assert first.fields["tags"][:3] == ["B-OG", "I-OG", "O"] and first.fields["unit"] == "char"
    assert first.fields["token_lines"][0] == 7
    # every character line is read: 295,934 lines − 5 comments − 5,000 headers − 5,000 blank lines
    assert sum(len(r.fields["tokens"]) for r in records) == 295_934 - 5 - 5000 - 5000


def test_klue_dp():
    records = list(read_records(DATA / "klue_dp/klue-dp-v1.1_dev.tsv", "klue-dp"))
    assert len(records) == 2000
    assert sum(len(r.fields["tokens"]) for r in records) == 22_496
    check_offsets(records)
    assert records[0].fields["tags"][:2] == ["SS+SL+NNP+SN+SS", "NNP+JKS"]


@pytest.mark.parametrize(
    ("column", "first_tags"), [("upos", ["NOUN", "NOUN", "NOUN"]), ("xpos", ["NNP", "NNP", "NNG+NNG+JX"])]
)
def test_conllu_ud_korean(column, first_tags):
    records = list(read_records(DATA / "ud_korean_gsd/ko_gsd-ud-test.conllu", "conllu", tag_column=column))
    assert len(records) == 989
    check_offsets(records)
    assert records[0].fields["id"] == "test-s1"
    assert records[0].fields["tags"][:3] == first_tags
    assert records[0].fields["text"].startswith("현대증권 배성영 수석연구원은")


def test_conllu_without_text_line(tmp_path):
    path = tmp_path / "a.conllu"
    rows = ["1\tHello\thello\tINTJ\tUH\t_\t0\troot\t_\tSpaceAfter=No", "2\t!\t!\tPUNCT\t.\t_\t1\tpunct\t_\t_"]
    path.write_text("\n".join(rows) + "\n\n", encoding="utf-8")
    (record,) = read_records(path, "conllu")
    assert record.fields["text"] == "Hello!" and record.fields["offsets"] == [(0, 5), (5, 6)]


@pytest.mark.parametrize(
    ("fmt", "content", "message", "line"),
    [
        ("conll", "Hello\tO\nworld\n", "expected a word and a tag separated by a tab", 2),
        ("klue-ner", "## x\tmarked\n경\tB-OG\n찰찰\tI-OG\n", "expected one character before the tab", 3),
        ("klue-ner", "## x\tmarked\n경\tB-OG\n찰\t\n", "empty tag", 3),
        ("klue-dp", "## x\tt\n1\t나는\t나 는\n", "has 3 columns", 2),
        ("conllu", "# text = a b\n1\ta\ta\tX\n", "CoNLL-U needs 10", 2),
        ("conllu", "# text = a b\n1\tq\tq\tX\t_\t_\t0\troot\t_\t_\n", "is not where `# text` says", 2),
    ],
)
def test_errors_name_file_and_line(tmp_path, fmt, content, message, line):
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        list(read_records(path, fmt))
    assert err.value.line == line and message in str(err.value) and "bad.txt" in str(err.value)
