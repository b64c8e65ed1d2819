"""Nearest neighbours among unit sentence vectors, and a corpus's vectors kept on disk for the next search.

Two indexes answer `search(queries, k) → (scores, rows)`, best first:

- `ExactIndex`: every dot product (the cosine: vectors are unit length), a block of queries at a time and, past
  `CORPUS_BLOCK` documents, a block of the corpus at a time, so the scores held stay bounded and the vectors may be
  a memory-mapped file larger than memory (slow on such a corpus, but exact).
- `HnswIndex`: an HNSW graph from usearch (`pip install usearch`, or n2m's `index` extra): approximate, and read
  from its file by memory mapping, so a corpus's vectors need not fit in memory and a search reads only the graph
  nodes it visits. benchmarks/search_index.py measures it against exact search and FAISS (recall@10, build time,
  queries/s, memory) and is why usearch was chosen: a 2 MB wheel (FAISS's is 19 MB), actively released, recall
  and speed on a par with FAISS's HNSW, and the only candidate searched straight from its file: over 200,000 × 384
  vectors the searching process held 159 MB of anonymous memory with usearch's view (the index stays page cache,
  which the kernel can drop) against 497 MB with FAISS's HNSW read with `IO_FLAG_MMAP_IFC` (read into memory all
  the same). hnswlib ships no wheels (pip builds it with a compiler) and has had no release since 2023.

`choose_index("auto", n)` is exact up to `EXACT_LIMIT` documents and HNSW above.

A `SavedCorpus` is a folder: `vectors.npy` (float32, N × H, memory-mapped when read), `index.usearch` when an HNSW
index was asked for, and `corpus.json`, written last, which names the model, the file (size and SHA-256), the column
and the text side the vectors came from: a later search whose model and corpus match reads them instead of encoding
the corpus again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch

from n2m.errors import ConfigError

IndexKind = Literal["exact", "usearch"]
INDEX_CHOICES = ("auto", "exact", "usearch")
# `auto`: exact search up to this many documents: it needs no build and is never wrong, and up to here a query
# costs tens of ms and the vectors 150 MB (384 dimensions). Past it the cost grows with the corpus: at 200,000,
# 124-135 ms a query one at a time on 2 cores and 460 MB resident, where usearch answered in 3 ms holding 160 MB
# (benchmarks/results/search_index.md).
EXACT_LIMIT = 100_000
QUERY_BLOCK = 1024  # queries scored against the corpus at once
CORPUS_BLOCK = 65_536  # documents scored at once: QUERY_BLOCK × CORPUS_BLOCK float32 scores are 256 MiB
# usearch's HNSW settings: 16 links per node and 128 candidates while building (its defaults), 128 while searching
# (its default 64 lost recall): recall@10 0.98 against exact on e5-small vectors of the 7,779 FAQ answers, at
# 0.6 ms a query (benchmarks/results/search_index.md)
HNSW_SETTINGS: dict[str, int] = {"connectivity": 16, "expansion_add": 128, "expansion_search": 128}
ENCODE_CHUNK = 65_536  # texts encoded, then written to the vectors file, at a time

VECTORS_FILE = "vectors.npy"
USEARCH_FILE = "index.usearch"
META_FILE = "corpus.json"
META_VERSION = 1


class VectorIndex(Protocol):
    kind: IndexKind

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...


def as_tensor(rows: np.ndarray) -> torch.Tensor:
    """float32 rows as a tensor without a copy, read-only (memory-mapped) ones included: torch warns that it
    cannot protect them from writes, and nothing here writes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))


def exact_top_k(
    queries: np.ndarray, corpus: np.ndarray, k: int, block: int = QUERY_BLOCK, corpus_block: int = CORPUS_BLOCK
) -> tuple[np.ndarray, np.ndarray]:
    """The `k` corpus rows nearest each query by dot product: scores and row numbers `(Q, min(k, N))`, best first.
    A corpus longer than `corpus_block` is read a block at a time (a memory-mapped one is never read whole)."""
    k = min(k, len(corpus))
    if len(queries) == 0 or k == 0:
        return np.zeros((len(queries), k), np.float32), np.zeros((len(queries), k), np.int64)
    scores, rows = [], []
    for start in range(0, len(queries), block):
        q = as_tensor(queries[start : start + block])
        best_scores: torch.Tensor | None = None
        best_rows: torch.Tensor | None = None
        for first in range(0, len(corpus), corpus_block):
            docs = as_tensor(corpus[first : first + corpus_block])
            found = (q @ docs.T).topk(min(k, len(docs)), dim=1)
            block_rows = found.indices + first
            if best_scores is None or best_rows is None:
                best_scores, best_rows = found.values, block_rows
                continue
            merged = torch.cat([best_scores, found.values], dim=1).topk(k, dim=1)
            best_scores = merged.values
            best_rows = torch.cat([best_rows, block_rows], dim=1).gather(1, merged.indices)
        assert best_scores is not None and best_rows is not None
        scores.append(best_scores.numpy())
        rows.append(best_rows.numpy())
    return np.concatenate(scores), np.concatenate(rows)


class ExactIndex:
    """Exact search over vectors in memory or memory-mapped (`exact_top_k`)."""

    kind: IndexKind = "exact"

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return exact_top_k(queries, self.vectors, k)


def usearch_index() -> Any:
    """usearch's `Index` class, or a ConfigError saying how to install it."""
    try:
        from usearch.index import Index
    except ImportError:
        raise ConfigError("the usearch index needs usearch: pip install usearch (or n2m[index]); "
                          "or search with --index exact") from None  # fmt: skip
    return Index


class HnswIndex:
    """usearch's HNSW graph over unit vectors (inner-product metric: a distance is 1 − cosine). Rows are keys."""

    kind: IndexKind = "usearch"

    def __init__(self, index: Any, vectors: np.ndarray, threads: int = 0) -> None:
        self.index = index
        self.vectors = vectors  # for the rare query the graph answers with fewer than k rows
        self.threads = threads  # 0: every core

    @classmethod
    def build(
        cls, vectors: np.ndarray, threads: int = 0, settings: dict[str, int] | None = None, block: int = ENCODE_CHUNK
    ) -> HnswIndex:
        """A graph over every row of `vectors`, added a block at a time (a memory-mapped file stays on disk)."""
        index = usearch_index()(ndim=vectors.shape[1], metric="ip", dtype="f32", **(settings or HNSW_SETTINGS))
        for start in range(0, len(vectors), block):
            part = np.ascontiguousarray(vectors[start : start + block], dtype=np.float32)
            index.add(np.arange(start, start + len(part), dtype=np.uint64), part, threads=threads)
        return cls(index, vectors, threads)

    def save(self, path: str | Path) -> None:
        self.index.save(str(path))

    @classmethod
    def load(cls, path: str | Path, vectors: np.ndarray, view: bool = True, threads: int = 0) -> HnswIndex:
        """The saved graph; `view`: memory-mapped from the file (read-only), not read into memory."""
        index = usearch_index().restore(str(path), view=view)
        if index is None:
            raise ConfigError(f"{path} is no usearch index: delete it and search again")
        index.expansion_search = HNSW_SETTINGS["expansion_search"]  # a search setting: the file does not keep it
        return cls(index, vectors, threads)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self.vectors))
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if len(queries) == 0 or k == 0:
            return np.zeros((len(queries), k), np.float32), np.zeros((len(queries), k), np.int64)
        found = self.index.search(queries, k, threads=self.threads)
        # one query gives `Matches` (its hits only), several `BatchMatches` (k columns, and a count per row)
        counts = np.asarray(getattr(found, "counts", [len(found.keys)])).reshape(-1)
        rows = np.zeros((len(queries), k), np.int64)
        scores = np.zeros((len(queries), k), np.float32)
        keys, distances = np.asarray(found.keys).reshape(len(queries), -1), np.asarray(found.distances)
        width = min(k, keys.shape[1])
        rows[:, :width] = keys[:, :width]
        scores[:, :width] = 1.0 - distances.reshape(len(queries), -1)[:, :width]
        short = np.flatnonzero(counts < k)
        if len(short):  # a graph can return fewer than k (tiny or disconnected corners): those queries go exact
            scores[short], rows[short] = exact_top_k(queries[short], self.vectors, k)
        return scores, rows


def choose_index(kind: str, count: int) -> IndexKind:
    """`auto` → exact up to `EXACT_LIMIT` documents, usearch above; else the kind asked for."""
    if kind == "auto":
        return "exact" if count <= EXACT_LIMIT else "usearch"
    if kind not in ("exact", "usearch"):
        raise ConfigError(f"unknown index {kind!r}: choose one of {', '.join(INDEX_CHOICES)}")
    return kind  # type: ignore[return-value]


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_fingerprint(model: str, card: dict[str, Any]) -> str:
    """What vectors depend on: the model's card (encoding, prefixes, pooling) and, for a folder, the name, size
    and modification time of each of its files (a re-export changes them); a backbone name stands for itself."""
    parts: list[Any] = [card]
    folder = Path(model)
    if folder.is_dir():
        parts += sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file())
    else:
        parts.append(model)
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def default_folder(corpus: str | Path, model: str, fingerprint: str) -> Path:
    """`CORPUS.n2m-index/<model name>-<fingerprint>/`, next to the corpus file: one folder per model."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(model.rstrip("/")).name) or "model"
    return Path(f"{corpus}.n2m-index") / f"{name}-{fingerprint[:8]}"


def corpus_folder(corpus: str | Path, model: str, fingerprint: str, index_dir: str | Path | None = None) -> Path:
    """Where a corpus's vectors and index are kept: `index_dir`, else `default_folder`; a folder that cannot be
    made (a read-only corpus folder) gives way to a temporary one, said in one line, so the search still runs."""
    folder = Path(index_dir) if index_dir else default_folder(corpus, model, fingerprint)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        folder = Path(tempfile.mkdtemp(prefix="n2m-index-"))
        print(f"cannot keep the corpus's vectors next to it ({err.strerror}): they go to {folder}; see --index-dir")
    return folder


@dataclass
class SavedCorpus:
    """A corpus's passage vectors on disk and the index over them."""

    folder: Path
    vectors: np.ndarray  # (N, H) float32, memory-mapped
    index: VectorIndex
    reused: bool  # the vectors were read, not encoded

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(queries, k)


def read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def encode_to_file(predictor: Any, texts: Sequence[str], path: Path, batch_size: int, progress: bool) -> np.ndarray:
    """Passage vectors written into a `.npy` a chunk at a time: the whole array is never held in memory."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(len(texts), predictor.dimension))
    for start in range(0, len(texts), ENCODE_CHUNK):
        part = texts[start : start + ENCODE_CHUNK]
        out[start : start + len(part)] = predictor.encode(part, batch_size, kind="passage", progress=progress)
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


def open_corpus(
    folder: Path,
    predictor: Any,
    texts: Sequence[str],
    source: dict[str, Any],
    index: str = "auto",
    batch_size: int = 64,
    progress: bool = False,
    reencode: bool = False,
    threads: int = 0,
) -> SavedCorpus:
    """The corpus's vectors and index from `folder` when they were made from the same `source` (the model's
    fingerprint, the file's hash, the column, …); else encoded (`predictor.encode`, passage side), indexed and
    saved there. `source` must say everything the vectors depend on."""
    kind = choose_index(index, len(texts))
    meta = read_meta(folder)
    reused = not reencode and meta is not None and meta.get("version") == META_VERSION and meta["source"] == source
    reused = reused and meta is not None and meta.get("count") == len(texts) and (folder / VECTORS_FILE).is_file()
    if not reused:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / META_FILE).unlink(missing_ok=True)  # written last: its absence marks a folder being made
        vectors = encode_to_file(predictor, texts, folder / VECTORS_FILE, batch_size, progress)
        meta = {"version": META_VERSION, "source": source, "count": len(texts), "dimension": int(vectors.shape[1])}
    else:
        vectors = np.load(folder / VECTORS_FILE, mmap_mode="r")
    assert meta is not None
    indexes = dict(meta.get("indexes", {}))
    if kind == "exact":
        built: VectorIndex = ExactIndex(vectors)
    elif reused and indexes.get("usearch") == HNSW_SETTINGS and (folder / USEARCH_FILE).is_file():
        built = HnswIndex.load(folder / USEARCH_FILE, vectors, view=True, threads=threads)
    else:
        graph = HnswIndex.build(vectors, threads)
        graph.save(folder / USEARCH_FILE)
        built = HnswIndex.load(folder / USEARCH_FILE, vectors, view=True, threads=threads)
        indexes["usearch"] = HNSW_SETTINGS
    if not reused or indexes != meta.get("indexes", {}):
        temporary = folder / f"{META_FILE}.{os.getpid()}"
        temporary.write_text(json.dumps({**meta, "indexes": indexes}, indent=2, ensure_ascii=False) + "\n", "utf-8")
        temporary.replace(folder / META_FILE)
    return SavedCorpus(folder, vectors, built, reused)
