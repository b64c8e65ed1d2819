"""The search index for corpora beyond memory (`n2m.shapes.n21.index`): HNSW (usearch) against exact search, a
saved index read back, exact search over a corpus read in blocks, and `n2m search` reading its saved vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from n2m.cli import main
from n2m.errors import ConfigError
from n2m.shapes.n21.index import (
    EXACT_LIMIT,
    META_FILE,
    USEARCH_FILE,
    ExactIndex,
    HnswIndex,
    choose_index,
    exact_top_k,
    open_corpus,
)
from n2m.shapes.n21.predictor import SequencePredictor

pytest.importorskip("usearch")


def clustered(count: int, dimension: int = 48, seed: int = 0) -> np.ndarray:
    """Unit vectors in 40 clusters: neighbours that mean something, as sentence vectors have."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dimension))
    vectors = centres[rng.integers(0, 40, count)] + 0.6 * rng.standard_normal((count, dimension))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a.tolist(), b.tolist(), strict=True)]))


def test_hnsw_top10_overlaps_exact_and_a_saved_index_answers_the_same(tmp_path: Path) -> None:
    corpus, queries = clustered(3000), clustered(200, seed=1)
    exact_scores, exact_rows = ExactIndex(corpus).search(queries, 10)
    graph = HnswIndex.build(corpus, threads=1)
    scores, rows = graph.search(queries, 10)
    assert overlap(rows, exact_rows) >= 0.95
    # the scores are cosines, as exact search's are: the same pairs give the same numbers
    same = rows == exact_rows
    np.testing.assert_allclose(scores[same], exact_scores[same], atol=1e-5)

    graph.save(tmp_path / USEARCH_FILE)
    for view in (True, False):  # memory-mapped from the file, and read into memory
        again = HnswIndex.load(tmp_path / USEARCH_FILE, corpus, view=view, threads=1)
        got_scores, got_rows = again.search(queries, 10)
        np.testing.assert_array_equal(got_rows, rows)
        np.testing.assert_allclose(got_scores, scores, atol=1e-6)


def test_exact_search_in_corpus_blocks_matches_one_block(tmp_path: Path) -> None:
    corpus, queries = clustered(1000), clustered(30, seed=2)
    np.save(tmp_path / "v.npy", corpus)
    mapped = np.load(tmp_path / "v.npy", mmap_mode="r")  # read-only and never read whole
    whole = exact_top_k(queries, corpus, 7)
    blocks = exact_top_k(queries, mapped, 7, block=8, corpus_block=64)
    np.testing.assert_array_equal(blocks[1], whole[1])
    np.testing.assert_allclose(blocks[0], whole[0], atol=1e-6)
    assert exact_top_k(queries, corpus[:3], 10)[1].shape == (30, 3)  # k past the corpus: all of it


def test_a_small_graph_still_gives_k_rows() -> None:
    corpus = clustered(12)
    scores, rows = HnswIndex.build(corpus, threads=1).search(corpus, 12)
    assert rows.shape == (12, 12)
    assert all(sorted(r) == list(range(12)) for r in rows.tolist())
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_auto_is_exact_up_to_the_limit() -> None:
    assert choose_index("auto", EXACT_LIMIT) == "exact"
    assert choose_index("auto", EXACT_LIMIT + 1) == "usearch"
    assert choose_index("exact", 10**9) == "exact"
    with pytest.raises(ConfigError, match="unknown index"):
        choose_index("faiss", 10)


class Counting:
    """A predictor stand-in that encodes by lookup and counts what it was asked to encode."""

    dimension = 48

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors
        self.encoded = 0

    def encode(self, texts: list[str], batch_size: int, kind: str, progress: bool) -> np.ndarray:
        self.encoded += len(texts)
        return np.stack([self.vectors[t] for t in texts])


def test_open_corpus_saves_and_reuses_only_what_matches(tmp_path: Path) -> None:
    texts = [f"text {i}" for i in range(300)]
    predictor = Counting(dict(zip(texts, clustered(300), strict=True)))
    folder, source = tmp_path / "saved", {"model": "m1", "texts_sha256": "abc"}
    first = open_corpus(folder, predictor, texts, source, index="usearch", threads=1)
    assert not first.reused and predictor.encoded == 300
    assert json.loads((folder / META_FILE).read_text())["indexes"]["usearch"]["connectivity"] == 16
    queries = clustered(20, seed=3)
    second = open_corpus(folder, predictor, texts, source, index="usearch", threads=1)
    assert second.reused and predictor.encoded == 300  # nothing encoded again
    np.testing.assert_array_equal(second.search(queries, 5)[1], first.search(queries, 5)[1])
    assert open_corpus(folder, predictor, texts, source, index="exact").reused  # the same vectors, exact search
    changed = open_corpus(folder, predictor, texts, {**source, "model": "m2"}, index="exact")
    assert not changed.reused and predictor.encoded == 600  # another model: encoded again


def test_search_command_reads_saved_vectors_the_second_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus, queries = tmp_path / "docs.tsv", tmp_path / "q.tsv"
    corpus.write_text("text\n고양이가 창가에 앉아 있다.\n남자가 기타를 친다.\n비가 와서 경기가 연기되었다.\n", "utf-8")
    queries.write_text("text\n한 남자가 기타를 연주한다.\n", "utf-8")
    sides: list[str] = []
    encode = SequencePredictor.encode

    def counted(self: SequencePredictor, texts: list[str], *args: object, **kwargs: object) -> np.ndarray:
        sides.append(str(kwargs.get("kind", "query")))
        return encode(self, texts, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SequencePredictor, "encode", counted)
    outputs = []
    for run in range(2):
        out = tmp_path / f"hits{run}.jsonl"
        main(["search", "minilm-l6", "--corpus", str(corpus), "--queries", str(queries), "--top-k", "2",
              "--index", "usearch", "--threads", "1", "--output", str(out)])  # fmt: skip
        outputs.append([json.loads(line) for line in out.read_text("utf-8").splitlines()])
    printed = capsys.readouterr().out
    assert "encoded and saved the vectors of 3 documents" in printed
    assert "read the saved vectors of 3 documents" in printed
    assert sides == ["passage", "query", "query"]  # the corpus once, the queries each time
    assert outputs[0] == outputs[1] and outputs[0][0]["text"] == "남자가 기타를 친다."
    assert list(Path(f"{corpus}.n2m-index").glob("minilm-l6-*/corpus.json"))
