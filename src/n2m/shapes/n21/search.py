"""Sentence vectors put to work: exact cosine search and paraphrase mining, and the commands around them.

n2m encode MODEL --input texts.tsv --column text --output vectors.npy          # or .parquet (needs pyarrow)
n2m search MODEL --corpus answers.tsv --queries questions.tsv --top-k 10 --output hits.jsonl   # or .tsv
n2m mine MODEL --input questions.tsv --top-k 5 --threshold 0.9 --output pairs.tsv

MODEL is a folder written by `n2m export` (a bi-encoder, or a one-text model) or a backbone never fine-tuned
(`e5-small`, `minilm-l6`, a local Hugging Face folder: see `SequencePredictor.from_backbone`). Files are read
and checked before the model loads: an empty file, or a row whose text is empty, is a one-line error naming the
file and the line. A text longer than the model's `max_length` tokens is cut to its first `max_length`
tokens (as in training), and the command says how many were and where.

Vectors are unit length, so a dot product is the cosine. `n2m search --index exact` computes every one, a block
of queries (and, past 65,536 documents, of the corpus) at a time; `--index usearch` searches an HNSW graph
(approximate: recall@10 against exact in benchmarks/results/search_index.md); `auto`, the default, is exact up to
100,000 documents and usearch above (`n21.index`). The corpus's vectors (and graph) are saved next to the corpus,
CORPUS.n2m-index/<model>-<hash>/ (`--index-dir`), and read back by the next search with the same model and texts.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from n2m.core.card import CARD_FILE
from n2m.core.predictor import Precision, Predictor, precision_argument
from n2m.errors import ConfigError, DataError
from n2m.shapes.n21.examples import Texts, load_texts
from n2m.shapes.n21.index import (
    EXACT_LIMIT,
    INDEX_CHOICES,
    SavedCorpus,
    corpus_folder,
    exact_top_k,
    model_fingerprint,
    open_corpus,
)
from n2m.shapes.n21.predictor import SequencePredictor, TextKind

BLOCK = 1024  # queries scored against the corpus at once


def load_embedder(model: str, device: str = "cpu", precision: Precision = "fp32") -> SequencePredictor:
    """An exported N21 folder's predictor, or a backbone's (`from_backbone`) when `model` is no export."""
    if not Path(model, CARD_FILE).is_file():
        backbone = SequencePredictor.from_backbone(model, device)
        backbone.set_precision(precision)
        return backbone
    try:
        predictor = Predictor.from_pretrained(model, device, precision=precision)
    except Exception as err:  # a broken folder (bad JSON, cut-off weights, …): one line, not a traceback
        raise ConfigError(f"{model} cannot be loaded as an n2m model: {type(err).__name__}: {err}") from None
    if not isinstance(predictor, SequencePredictor) or not predictor.gives_vectors:
        what = f"an {predictor.card.shape} {predictor.card.task} model"
        raise ConfigError(f"{model} is {what} without a vector per text; give a bi-encoder or a backbone")
    return predictor


def runtime_name(backend: str, precision: Precision) -> str:
    """What computes the vectors, as saved corpus vectors are keyed: another backend or precision gives others."""
    return backend if precision == "fp32" else f"{backend} ({precision})"


def top_k(queries: np.ndarray, corpus: np.ndarray, k: int, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """The `k` corpus rows nearest each query by dot product (cosine, for unit vectors): scores and row
    numbers `(Q, min(k, N))`, best first (`index.exact_top_k`: a large corpus is read in blocks too)."""
    return exact_top_k(queries, corpus, k, block)


def mine_pairs(
    vectors: np.ndarray, top_k_each: int = 10, threshold: float | None = None, block: int = BLOCK
) -> list[tuple[int, int, float]]:
    """Paraphrase (or duplicate) pairs within one set: each text's `top_k_each` nearest others, kept where the
    cosine is at least `threshold`; each pair once as (i, j, score) with i < j, best first."""
    k = min(top_k_each + 1, len(vectors))  # + 1: a text is its own nearest, and is dropped
    scores, rows = top_k(vectors, vectors, k, block)
    pairs: dict[tuple[int, int], float] = {}
    for i in range(len(vectors)):
        for score, j in zip(scores[i].tolist(), rows[i].tolist(), strict=True):
            if j == i or (threshold is not None and score < threshold):
                continue
            pairs.setdefault((min(i, j), max(i, j)), score)
    return [(i, j, s) for (i, j), s in sorted(pairs.items(), key=lambda item: (-item[1], item[0]))]


def texts_sha256(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()


def report_truncation(predictor: SequencePredictor, found: Texts, path: str, kind: TextKind) -> None:
    """The stated rule for a text longer than the model reads: it is cut, and we say which were."""
    limit = predictor.card.encoding.max_length
    counts = predictor.text_token_counts(found.texts, kind)
    cut = [line for line, n in zip(found.lines, counts, strict=True) if n > limit]
    if cut:
        lines = ", ".join(map(str, cut[:10])) + (", …" if len(cut) > 10 else "")
        print(f"{path}: {len(cut)} text(s) longer than {limit} tokens were cut to their first {limit} (lines {lines})")


def write_table(path: str, rows: Sequence[dict[str, Any]]) -> None:
    """`.jsonl`: one object per row; `.tsv` (or anything else): a header and tab-separated values."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix == ".jsonl":
        with target.open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        return
    with target.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["id"], delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)


def write_vectors(path: str, vectors: np.ndarray, found: Texts) -> None:
    if path.endswith(".npy"):
        np.save(path, vectors)
        return
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("writing .parquet needs pyarrow (pip install pyarrow); or write .npy") from None
    dimension = vectors.shape[1]
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dimension)
    pq.write_table(pa.table({"id": found.ids, "text": found.texts, "embedding": column}), path)


def common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a folder written by `n2m export`, or a backbone: e5-small, minilm-l6, a folder")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    precision_argument(parser)


def index_arguments(parser: argparse.ArgumentParser) -> None:
    """How a corpus is searched and where its vectors are kept: `n2m search` and `n2m serve --corpus`."""
    parser.add_argument(
        "--index",
        choices=INDEX_CHOICES,
        default="auto",
        help="exact: every cosine; usearch: an HNSW graph (approximate, memory-mapped, for corpora "
        f"beyond memory); auto (default): exact up to {EXACT_LIMIT:,} documents, usearch above",
    )
    parser.add_argument(
        "--index-dir",
        default=None,
        help="where the corpus's vectors and index are kept, so the next run with this model and "
        "corpus does not encode it again (default: CORPUS.n2m-index/<model>-<hash>/)",
    )
    parser.add_argument("--reencode", action="store_true", help="encode the corpus even where saved vectors match")


def kept_corpus(
    predictor: Any,
    texts: Sequence[str],
    corpus: str | Path,
    model: str,
    *,
    backend: str = "torch",
    index: str = "auto",
    index_dir: str | Path | None = None,
    reencode: bool = False,
    batch_size: int = 64,
    threads: int = 0,
) -> SavedCorpus:
    """A corpus file's passage vectors and index, kept beside it (`corpus_folder`) and read back when the model
    and the texts match (`n2m search`, `n2m serve --corpus`); says which it did. Another `backend` than torch
    (e.g. `onnx (model.int8.onnx)`) is part of what the vectors depend on: int8 vectors are not fp32's."""
    card = predictor.card.to_dict() | ({} if backend == "torch" else {"backend": backend})
    fingerprint = model_fingerprint(model, card)
    folder = corpus_folder(corpus, model, fingerprint, index_dir)
    # everything the vectors depend on: a saved folder whose record differs is encoded again
    source = {"model": fingerprint, "texts_sha256": texts_sha256(texts)}
    saved = open_corpus(folder, predictor, texts, source, index, batch_size, progress=True, reencode=reencode,
                        threads=threads)  # fmt: skip
    done = "read the saved" if saved.reused else "encoded and saved the"
    print(f"{done} vectors of {len(texts)} documents in {saved.folder} ({saved.index.kind} search, "
          f"{saved.vectors.shape[1]} dimensions)", flush=True)  # fmt: skip
    return saved


def encode_command(argv: list[str]) -> None:
    """`n2m encode MODEL --input FILE --column text --output X.npy|X.parquet`: one vector per row, in file order."""
    parser = argparse.ArgumentParser(prog="n2m encode", description=encode_command.__doc__)
    common_arguments(parser)
    parser.add_argument("--input", required=True, help="CSV, TSV, JSONL or JSON")
    parser.add_argument("--column", default="text", help="the column of texts")
    parser.add_argument("--id", default=None, help="a column of ids for the .parquet output (else row numbers)")
    parser.add_argument("--output", required=True, help=".npy (float32, N × dim) or .parquet (id, text, embedding)")
    parser.add_argument("--kind", choices=["query", "passage"], default="query", help="which prefix the texts get")
    parser.add_argument("--no-normalize", action="store_true", help="pooled vectors as they are, not unit length")
    args = parser.parse_args(argv)
    if not args.output.endswith((".npy", ".parquet")):
        parser.error("--output must end in .npy or .parquet")
    found = load_texts(args.input, args.column, id_column=args.id)  # checked before the model loads
    predictor = load_embedder(args.model, args.device, args.precision)
    report_truncation(predictor, found, args.input, args.kind)
    vectors = predictor.encode(found.texts, args.batch_size, not args.no_normalize, args.kind, progress=True)
    write_vectors(args.output, vectors, found)
    print(f"wrote {vectors.shape[0]} vectors of {vectors.shape[1]} to {args.output}")


def search_command(argv: list[str]) -> None:
    """`n2m search MODEL --corpus FILE --queries FILE --top-k 10 --output hits.jsonl|hits.tsv`: exact cosine
    search; one row per (query, hit): query_id, query, rank (from 1), doc_id, score, text."""
    parser = argparse.ArgumentParser(prog="n2m search", description=search_command.__doc__)
    common_arguments(parser)
    parser.add_argument("--corpus", required=True, help="the documents (CSV, TSV, JSONL or JSON)")
    parser.add_argument("--queries", required=True, help="the queries (CSV, TSV, JSONL or JSON)")
    parser.add_argument("--corpus-column", default="text")
    parser.add_argument("--query-column", default="text")
    parser.add_argument("--corpus-id", default=None, help="the corpus's id column (else row numbers from 0)")
    parser.add_argument("--query-id", default=None, help="the queries' id column (else row numbers from 0)")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--output", required=True, help=".jsonl or .tsv")
    index_arguments(parser)
    parser.add_argument("--threads", type=int, default=0, help="usearch's threads for building and searching (0: all)")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error("--top-k must be at least 1")
    corpus = load_texts(args.corpus, args.corpus_column, id_column=args.corpus_id)
    queries = load_texts(args.queries, args.query_column, id_column=args.query_id)
    predictor = load_embedder(args.model, args.device, args.precision)
    report_truncation(predictor, corpus, args.corpus, "passage")
    report_truncation(predictor, queries, args.queries, "query")
    saved = kept_corpus(predictor, corpus.texts, args.corpus, args.model, index=args.index, index_dir=args.index_dir,
                        reencode=args.reencode, batch_size=args.batch_size, threads=args.threads,
                        backend=runtime_name("torch", args.precision))  # fmt: skip
    asked = predictor.encode(queries.texts, args.batch_size, kind="query", progress=True)
    scores, rows = saved.search(asked, args.top_k)
    hits = [
        {
            "query_id": queries.ids[q],
            "query": queries.texts[q],
            "rank": rank + 1,
            "doc_id": corpus.ids[row],
            "score": round(float(score), 6),
            "text": corpus.texts[row],
        }
        for q in range(len(queries.texts))
        for rank, (score, row) in enumerate(zip(scores[q].tolist(), rows[q].tolist(), strict=True))
    ]
    write_table(args.output, hits)
    print(f"wrote the top {scores.shape[1]} of {len(corpus.texts)} documents for {len(queries.texts)} queries "
          f"to {args.output}")  # fmt: skip


def mine_command(argv: list[str]) -> None:
    """`n2m mine MODEL --input FILE --top-k 10 [--threshold 0.9] --output pairs.tsv|pairs.jsonl`: paraphrase and
    duplicate pairs within one file (each text's nearest others), best first: id1, text1, id2, text2, score."""
    parser = argparse.ArgumentParser(prog="n2m mine", description=mine_command.__doc__)
    common_arguments(parser)
    parser.add_argument("--input", required=True, help="CSV, TSV, JSONL or JSON")
    parser.add_argument("--column", default="text")
    parser.add_argument("--id", default=None, help="an id column (else row numbers from 0)")
    parser.add_argument("--top-k", type=int, default=10, help="neighbours looked at per text")
    parser.add_argument("--threshold", type=float, default=None, help="keep pairs whose cosine is at least this")
    parser.add_argument("--output", required=True, help=".tsv or .jsonl")
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error("--top-k must be at least 1")
    found = load_texts(args.input, args.column, id_column=args.id)
    if len(found.texts) < 2:
        raise DataError("has one row: mining needs at least two texts", args.input)
    predictor = load_embedder(args.model, args.device, args.precision)
    report_truncation(predictor, found, args.input, "query")
    vectors = predictor.encode(found.texts, args.batch_size, kind="query", progress=True)
    pairs = mine_pairs(vectors, args.top_k, args.threshold)
    write_table(args.output, [
        {"id1": found.ids[i], "text1": found.texts[i], "id2": found.ids[j], "text2": found.texts[j],
         "score": round(score, 6)} for i, j, score in pairs
    ])  # fmt: skip
    print(f"wrote {len(pairs)} pairs to {args.output}")


COMMANDS = {"encode": encode_command, "search": search_command, "mine": mine_command}
