"""Write the fixed retrieval splits the recipes read (run once; the output is committed):

data/korean_chatbot/faq/{train,val,test}.tsv, answers.tsv      (recipes/ko-faq-retrieval.yaml)
    ChatbotData.csv's (question, answer) rows, split by question: questions that differ only in spacing,
    punctuation or case are one question, and a question's rows all go to one split (seeded, 80/10/10).
    Exact duplicate rows are written once. answers.tsv: every distinct answer, the corpus all splits search.
data/korean_question_pair/retrieval/{train,val,test}.tsv, distractors.tsv      (recipes/ko-question-pair.yaml)
    The source's own splits, duplicate pairs only: is_duplicate 0 means "the same question" in this data
    (identical pairs carry 0), and identical pairs teach nothing, so they are dropped. A val or test row that
    shares a question with train is dropped (no question in two splits); so is an evaluation query that is
    itself a passage of its split (it would find itself). distractors.tsv: the second questions of
    non-duplicate pairs (is_duplicate 1), extra documents the evaluation searches.

python scripts/make_retrieval_splits.py
"""

from __future__ import annotations

import csv
import random
import re
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = 18
NOT_WORD = re.compile(r"[\W_]+")


def question_key(text: str) -> str:
    """What makes two questions the same question here: NFC, case, spacing and punctuation ignored."""
    return NOT_WORD.sub("", unicodedata.normalize("NFC", text).lower())


def write_tsv(path: Path, header: list[str], rows: list[tuple[str, ...]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        writer.writerows(rows)
    print(f"{path.relative_to(ROOT)}: {len(rows)} rows")


def clean(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def faq_splits() -> None:
    with (ROOT / "data/korean_chatbot/ChatbotData.csv").open(encoding="utf-8") as f:
        rows = [(clean(r["Q"]), clean(r["A"])) for r in csv.DictReader(f)]
    groups: dict[str, list[tuple[str, str]]] = {}
    for row in dict.fromkeys(rows):  # exact duplicate rows once, first-seen order
        groups.setdefault(question_key(row[0]), []).append(row)
    keys = sorted(groups)
    random.Random(SEED).shuffle(keys)
    n_test = n_val = len(keys) // 10
    parts = {"test": keys[:n_test], "val": keys[n_test : n_test + n_val], "train": keys[n_test + n_val :]}
    out = ROOT / "data/korean_chatbot/faq"
    for name, chosen in parts.items():
        write_tsv(out / f"{name}.tsv", ["question", "answer"], [row for k in chosen for row in groups[k]])
    answers = sorted({answer for _, answer in rows})
    write_tsv(out / "answers.tsv", ["answer"], [(a,) for a in answers])


def question_pair_splits() -> None:
    source = ROOT / "data/korean_question_pair"
    read = {}
    for name, file in (("train", "train.txt"), ("val", "validation.txt"), ("test", "test.txt")):
        with (source / file).open(encoding="utf-8") as f:
            read[name] = [(clean(r["question1"]), clean(r["question2"]), r["is_duplicate"].strip())
                          for r in csv.DictReader(f, delimiter="\t")]  # fmt: skip
    train_keys = {question_key(q) for q1, q2, _ in read["train"] for q in (q1, q2)}
    distractors = sorted({q2 for rows in read.values() for _, q2, label in rows if label == "1"})
    out = source / "retrieval"
    for name, rows in read.items():
        pairs = [(q1, q2) for q1, q2, label in rows if label == "0" and question_key(q1) != question_key(q2)]
        if name != "train":
            pairs = [p for p in pairs if not {question_key(q) for q in p} & train_keys]
            corpus = {question_key(q2) for _, q2 in pairs} | {question_key(d) for d in distractors}
            pairs = [(q1, q2) for q1, q2 in pairs if question_key(q1) not in corpus]
        write_tsv(out / f"{name}.tsv", ["question", "duplicate"], list(dict.fromkeys(pairs)))
    write_tsv(out / "distractors.tsv", ["duplicate"], [(d,) for d in distractors])


if __name__ == "__main__":
    faq_splits()
    question_pair_splits()
