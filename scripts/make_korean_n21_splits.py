"""Write the fixed splits of the Korean N21 suite's classification recipes (run once; the output is committed).
The sources' CSV-style quoting is read, and the splits are written unquoted (as n2m reads a TSV, a `"` is text).
Every split is carved by `n2m.core.splits.carve` (the rule every shape uses) over *groups*, sorted then seeded:
a text, normalized (NFC, case, spacing and punctuation ignored), never lands in two splits.

data/korean_hate_speech/splits/{train,val,test}.tsv      (recipes/ko-hate-speech.yaml)
    The source gives train (7,896) and dev (471; its test labels are withheld): 10% of train, by comment,
    validates; dev, every row, is the test split. A train comment that is also in dev is dropped.
data/korean_question_pair/pairs/{train,val,test}.tsv      (recipes/ko-question-pair-cls.yaml)
    The source's own splits, labels named: is_duplicate 0 is "same" (the source README: 같은 질문 0, 다른 질문 1;
    identical pairs carry 0), 1 is "different". Pairs of one question with itself are dropped (nothing to
    learn or test); so is a validation pair also in train and a test pair also in train or validation, in either
    order.
data/klue_nli/splits/{train,val,test}.tsv      (recipes/klue-nli.yaml)
    KLUE-NLI's dev file (3,000 pairs; the train file is not bundled), split 80/10/10 by premise: the three
    hypotheses written for one premise stay together, so no premise (and no pair) is in two splits.
data/korean_chatbot/topic/{train,val,test}.tsv      (recipes/ko-chatbot-topic.yaml)
    ChatbotData.csv's questions with their topic (0 daily, 1 breakup, 2 love: the source README's 일상다반사,
    이별, 사랑), each distinct question once, split 80/10/10 by question; a question labelled with two topics
    is dropped.

python scripts/make_korean_n21_splits.py
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from n2m.core.splits import carve

ROOT = Path(__file__).resolve().parents[1]
SEED = 20
NOT_WORD = re.compile(r"[\W_]+")
PAIR_LABELS = {"0": "same", "1": "different"}
TOPICS = {"0": "daily", "1": "breakup", "2": "love"}
Row = TypeVar("Row")


def text_key(text: str) -> str:
    """What makes two texts the same text here: NFC, case, spacing and punctuation ignored."""
    return NOT_WORD.sub("", unicodedata.normalize("NFC", text).lower())


def clean(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def read_tsv(path: Path) -> list[dict[str, str]]:
    """The sources' TSVs are quoted as CSV is (`"a ""b"" c"`): read so, quotes inside a text are its own."""
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def write_tsv(path: Path, header: list[str], rows: Sequence[Sequence[str]]) -> None:
    """Unquoted, as n2m reads a TSV (a `"` is text): `clean` leaves no tab or line break inside a text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(header), *("\t".join(row) for row in rows)]
    assert all(len(line.split("\t")) == len(header) for line in lines), path
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{path.relative_to(ROOT)}: {len(rows)} rows")


def split_groups(
    rows: list[Row], key: Callable[[Row], str], test_ratio: float, val_ratio: float
) -> dict[str, list[Row]]:
    """Rows grouped by `key`, the groups carved (sorted, then seeded), each group's rows kept in file order."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    held = {k: name for name, keys in carve(sorted(groups), test_ratio, val_ratio, SEED).items() for k in keys}
    parts: dict[str, list[Row]] = {name: [] for name in dict.fromkeys(held.values())}
    for k, members in groups.items():  # file order within each split
        parts[held[k]].extend(members)
    return parts


def hate_speech() -> None:
    source = ROOT / "data/korean_hate_speech"
    header = ["comments", "contain_gender_bias", "bias", "hate"]
    read = {name: [[clean(r["comments"]), r["contain_gender_bias"], r["bias"], r["hate"]]
                   for r in read_tsv(source / f"{name}.tsv")] for name in ("train", "dev")}  # fmt: skip
    dev = {text_key(r[0]) for r in read["dev"]}
    parts = split_groups([r for r in read["train"] if text_key(r[0]) not in dev], lambda r: text_key(r[0]), 0.0, 0.1)
    for name, rows in (("train", parts["train"]), ("val", parts["val"]), ("test", read["dev"])):
        write_tsv(source / "splits" / f"{name}.tsv", header, rows)


def question_pairs() -> None:
    source = ROOT / "data/korean_question_pair"
    earlier: set[frozenset[str]] = set()  # the pairs of the splits written before this one
    for name, file in (("train", "train.txt"), ("val", "validation.txt"), ("test", "test.txt")):
        rows, pairs = [], set()
        for r in read_tsv(source / file):
            q1, q2 = clean(r["question1"]), clean(r["question2"])
            pair = frozenset((text_key(q1), text_key(q2)))
            if len(pair) == 1 or pair in earlier:
                continue
            pairs.add(pair)
            rows.append((q1, q2, PAIR_LABELS[r["is_duplicate"].strip()]))
        earlier |= pairs
        write_tsv(source / "pairs" / f"{name}.tsv", ["question1", "question2", "label"], list(dict.fromkeys(rows)))


def klue_nli() -> None:
    source = ROOT / "data/klue_nli"
    records = json.loads((source / "klue-nli-v1.1_dev.json").read_text(encoding="utf-8"))
    rows = [(r["guid"], r["source"], clean(r["premise"]), clean(r["hypothesis"]), r["gold_label"]) for r in records]
    parts = split_groups(rows, lambda r: text_key(r[2]), 0.1, 0.1)
    for name, chosen in parts.items():
        write_tsv(source / "splits" / f"{name}.tsv", ["guid", "source", "premise", "hypothesis", "label"], chosen)


def chatbot_topics() -> None:
    source = ROOT / "data/korean_chatbot"
    with (source / "ChatbotData.csv").open(encoding="utf-8", newline="") as f:
        rows = [(clean(r["Q"]), TOPICS[r["label"].strip()]) for r in csv.DictReader(f)]
    topics: dict[str, set[str]] = {}
    for question, topic in rows:
        topics.setdefault(text_key(question), set()).add(topic)
    # one row per question as first written; a question filed under two topics says nothing about either
    kept = {text_key(q): (q, t) for q, t in reversed(rows) if len(topics[text_key(q)]) == 1}
    unique = [kept[k] for k in dict.fromkeys(text_key(q) for q, _ in rows) if k in kept]
    parts = split_groups(unique, lambda r: text_key(r[0]), 0.1, 0.1)
    for name, chosen in parts.items():
        write_tsv(source / "topic" / f"{name}.tsv", ["question", "topic"], chosen)


if __name__ == "__main__":
    hate_speech()
    question_pairs()
    klue_nli()
    chatbot_topics()
