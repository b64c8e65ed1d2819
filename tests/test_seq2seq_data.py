"""N2M data: parallel readers, pooled files with a committed split, list fields, label encoding, metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from n2m.errors import DataError
from n2m.readers import READERS
from n2m.readers.parallel import parallel_files, read_parallel, read_tab_pairs
from n2m.shapes.n2m.data import Seq2SeqDataModule, train_tokenizer
from n2m.shapes.n2m.encoding import encode_targets
from n2m.shapes.n2m.examples import DataFile, Seq2SeqColumns
from n2m.shapes.n2m.metrics import GenerationMetrics

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


def write_pair(folder: Path, name: str, ko: list[str], en: list[str]) -> str:
    (folder / f"{name}.ko").write_text("\n".join(ko) + "\n", encoding="utf-8")
    (folder / f"{name}.en").write_text("\n".join(en) + "\n", encoding="utf-8")
    return str(folder / f"{name}.{{ko,en}}")


def test_parallel_reader_on_the_bundled_news():
    records = list(read_parallel(DATA / "ko_en_news_park/korean-english-park.dev.{ko,en}"))
    assert len(records) == 1000
    first = records[0]
    assert set(first.fields) == {"ko", "en"} and first.line == 1
    assert first.fields["en"].startswith("After keeping the world's most powerful supercomputer")
    assert "parallel" in READERS and "tab_pairs" in READERS
    assert set(parallel_files("a/b.{ko,en}.txt")) == {"ko", "en"}


def test_parallel_reader_names_the_misaligned_line(tmp_path):
    pattern = write_pair(tmp_path, "x", ["하나", "", "셋"], ["one", "two", "three"])
    with pytest.raises(DataError) as err:
        list(read_parallel(pattern))
    assert err.value.line == 2 and err.value.path.endswith("x.ko") and "misaligned" in str(err.value)
    pattern = write_pair(tmp_path, "y", ["하나", "둘"], ["one", "two", "three"])
    with pytest.raises(DataError, match=r"different line counts \(y.ko: 2, y.en: 3\)"):
        list(read_parallel(pattern))
    with pytest.raises(DataError, match="does not exist"):
        list(read_parallel(tmp_path / "missing.{ko,en}"))
    with pytest.raises(DataError, match="brace"):
        list(read_parallel(tmp_path / "x.ko"))


def test_tab_pairs_reader_on_tatoeba():
    records = list(read_tab_pairs(DATA / "tatoeba_kor_eng/kor.txt", column_names=["en", "ko", "attribution"]))
    assert len(records) == 904
    assert records[0].fields["en"] == "Who?" and records[0].fields["ko"] == "누구?"


def test_pooled_files_with_a_written_then_reused_split_file(tmp_path):
    a = write_pair(tmp_path, "a", [f"문장 {i}" for i in range(40)], [f"sentence {i}" for i in range(40)])
    b = tmp_path / "b.tsv"
    b.write_text("".join(f"line {i}\t줄 {i}\tCC-BY\n" for i in range(20)), encoding="utf-8")
    split = tmp_path / "split.json"

    def data(**kwargs):
        return Seq2SeqDataModule(
            train=[a, DataFile(str(b), format="tab_pairs", column_names=["en", "ko", "attribution"])],
            columns=Seq2SeqColumns(source="ko", target="en"),
            split_file=str(split),
            val_ratio=0.1,
            test_ratio=0.2,
            **kwargs,
        )

    first = data()
    fit, test = first.read_splits("fit"), first.read_splits("test")["test"]
    assert split.is_file()
    written = json.loads(split.read_text())["files"]
    assert set(written) == {a, str(b)}
    assert {ex.file for ex in test} == {a, str(b)}  # every file is represented in the test split
    assert len(test) == 8 + 4 and len(fit["val"]) == 3 + 2 and len(fit["train"]) == 60 - 12 - 5
    ids = {(ex.file, ex.line) for ex in fit["train"]}
    assert not ids & {(ex.file, ex.line) for ex in test + fit["val"]}

    # the split file wins over the ratios and the seed once written
    again = data(split_seed=7)
    assert [(e.file, e.line) for e in again.read_splits("test")["test"]] == [(e.file, e.line) for e in test]

    # a file that changed length no longer matches its split
    write_pair(tmp_path, "a", [f"문장 {i}" for i in range(41)], [f"sentence {i}" for i in range(41)])
    with pytest.raises(DataError, match="written for 40 rows"):
        data().read_splits("fit")


def test_scitldr_list_fields_join_sources_and_keep_every_reference():
    data = Seq2SeqDataModule(
        test=str(DATA / "scitldr_en/test.jsonl"), columns=Seq2SeqColumns(source="source", target="target")
    )
    examples = data.read_splits("test")["test"]
    assert len(examples) == 618
    first = json.loads((DATA / "scitldr_en/test.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert examples[0].source == " ".join(s.strip() for s in first["source"])
    assert examples[0].references == tuple(t.strip() for t in first["target"])
    assert examples[0].target == first["target"][0].strip()
    assert max(len(ex.references) for ex in examples) > 1


def test_bad_rows_are_located(tmp_path):
    bad = tmp_path / "chat.csv"
    bad.write_text("Q,A,label\n안녕,반가워요,0\n   ,대답,0\n", encoding="utf-8")
    data = Seq2SeqDataModule(train=str(bad), columns=Seq2SeqColumns(source="Q", target="A"))
    with pytest.raises(DataError) as err:
        data.read_splits("fit")
    assert (err.value.line, err.value.column) == (3, "Q") and "empty source" in str(err.value)
    data = Seq2SeqDataModule(train=str(bad), columns=Seq2SeqColumns(source="question", target="A"))
    with pytest.raises(DataError, match="missing source column 'question'"):
        data.read_splits("fit")


def test_labels_end_with_eos_and_drop_the_start_token(tiny_backbone):
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone)
    labels = encode_targets(tokenizer, ["hello world", "a b c d e f g h"], 5, tokenizer.cls_token_id)
    assert labels[0] == tokenizer("hello world")["input_ids"][1:]  # no [CLS], ends with [SEP]
    assert labels[0][-1] == tokenizer.sep_token_id
    assert len(labels[1]) == 5 and labels[1][-1] == tokenizer.sep_token_id  # cut, but still ends


def test_seeded_subsets_are_stable(tmp_path):
    a = write_pair(tmp_path, "a", [f"문장 {i}" for i in range(50)], [f"sentence {i}" for i in range(50)])

    def train_lines(seed):
        data = Seq2SeqDataModule(
            train=a, columns=Seq2SeqColumns("ko", "en"), max_train_samples=10, split_seed=seed, val_ratio=0.1
        )
        return [ex.line for ex in data.read_splits("fit")["train"]]

    assert train_lines(1) == train_lines(1) and train_lines(1) != train_lines(2)
    assert len(train_lines(1)) == 10 and train_lines(1) == sorted(train_lines(1))


def test_scratch_tokenizer_is_trained_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("N2M_HOME", str(tmp_path / "home"))
    texts = [line.split("\t")[0] for line in (DATA / "tatoeba_kor_eng/kor.txt").read_text().splitlines()]
    texts += [line.split("\t")[1] for line in (DATA / "tatoeba_kor_eng/kor.txt").read_text().splitlines()]
    with pytest.raises(ValueError, match="distinct characters"):
        train_tokenizer(texts, 500)
    folder = train_tokenizer(texts, 1500)
    assert train_tokenizer(texts, 1500) == folder
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert 1000 < len(tokenizer) <= 1500
    ids = tokenizer("나는 학생이다. I am a student.")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == "나는 학생이다. I am a student."


def test_metrics_are_on_a_0_to_100_scale_and_tokenize_as_stated():
    metrics = GenerationMetrics(["bleu", "chrf", "rouge1", "rouge2", "rougeL"])
    metrics.update(["the cat sat on the mat"], [["the cat sat on the mat", "a cat was on the mat"]])
    scores = metrics.compute()
    assert scores == pytest.approx({"bleu": 100.0, "chrf": 100.0, "rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0})
    metrics.reset()
    metrics.update(["completely different words here"], [["the cat sat on the mat"]])
    assert metrics.compute()["bleu"] == 0.0
    # Korean spacing: word-level 13a sees no 4-gram match, character BLEU sees the same text
    korean = ["오늘은 날씨가 좋네요"], [["오늘은날씨가 좋네요"]]
    word, char = GenerationMetrics(["bleu"], "13a"), GenerationMetrics(["bleu"], "char")
    word.update(*korean)
    char.update(*korean)
    assert word.compute()["bleu"] < 20 < char.compute()["bleu"]
    with pytest.raises(ValueError, match="unknown metric"):
        GenerationMetrics(["meteor"])


def test_split_scores_over_batches_with_uneven_references_are_sacrebleus():
    """BLEU and chrF are SacreBLEU's (the reference implementation) over the whole split, texts kept across
    batches; images with 1-3 references, fed in two batches; `reset` starts over. `chrf` is chrF (characters
    only), `chrf++` chrF++ (and word 1-2-grams), not torchmetrics' default, which makes every chrF a chrF++."""
    import sacrebleu

    hypotheses = ["왼쪽에 빨간 사과 두 개가 있다.", "고양이 한 마리", "A red apple on the left.", "오른쪽에 개"]
    references = [["왼쪽에 빨간 사과 두 개가 있다.", "빨간 사과 두 개가 왼쪽에 있다."], ["고양이 한 마리가 있다."],
                  ["Two red apples on the left.", "On the left, two red apples.", "Red apples, left."],
                  ["오른쪽에 개 한 마리가 있다.", "개 한 마리가 오른쪽에 있다."]]  # fmt: skip
    ours = GenerationMetrics(["bleu", "chrf", "chrf++"], "char")
    for batch in (slice(0, 3), slice(3, 4)):
        ours.update(hypotheses[batch], references[batch])
    scores = ours.compute()
    streams = [[refs[i] if i < len(refs) else None for refs in references] for i in range(3)]
    assert scores["bleu"] == sacrebleu.corpus_bleu(hypotheses, streams, tokenize="char").score
    assert scores["chrf"] == sacrebleu.corpus_chrf(hypotheses, streams).score
    assert scores["chrf++"] == sacrebleu.corpus_chrf(hypotheses, streams, word_order=2).score
    assert 0 < scores["chrf"] < 100 and scores["chrf"] != scores["chrf++"]
    ours.reset()
    ours.update(hypotheses[1:2], references[1:2])
    assert ours.compute()["chrf"] == sacrebleu.corpus_chrf(hypotheses[1:2], [references[1]]).score


def test_optional_bertscore_with_a_local_encoder(tiny_backbone):
    metrics = GenerationMetrics(["chrf", "bertscore"], bertscore_model=tiny_backbone)
    metrics.update(["the cat sat on the mat", "hello there"], [["the cat sat on the mat"], ["good morning"]])
    scores = metrics.compute()
    assert set(scores) == {"chrf", "bertscore"} and 0 < scores["bertscore"] <= 100
    same = GenerationMetrics(["bertscore"], bertscore_model=tiny_backbone)
    same.update(["the cat sat on the mat"], [["the cat sat on the mat"]])
    assert same.compute()["bertscore"] == pytest.approx(100, abs=1e-3)
    with pytest.raises(ValueError, match="bertscore_model"):
        GenerationMetrics(["bertscore"])
