"""A corpus served for search (`n2m serve MODEL --corpus FILE`): its texts, ids and passage vectors, encoded once
at start-up, and exact cosine search over them.

The file is read and checked before the model loads (an empty file, or a row with no text, is a one-line error
naming the file and the line), through the same reader as `n2m search`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from n2m.shapes.n21.examples import Texts, load_texts
from n2m.shapes.n21.search import top_k

MAX_TOP_K = 100  # hits per search request (the schema's `maximum`)


@dataclass
class Corpus:
    source: str  # the file's name, shown on the page
    ids: list[str]
    texts: list[str]
    vectors: np.ndarray  # (N, H) float32, unit length: a dot product is the cosine

    def __len__(self) -> int:
        return len(self.texts)

    def search(self, query: np.ndarray, k: int) -> list[dict[str, Any]]:
        """The `k` documents nearest one unit query vector, best first: rank (from 1), id, text, score."""
        scores, rows = top_k(query[None, :], self.vectors, k)
        return [
            {"rank": rank + 1, "id": self.ids[row], "text": self.texts[row], "score": float(score)}
            for rank, (score, row) in enumerate(zip(scores[0].tolist(), rows[0].tolist(), strict=True))
        ]


def read_corpus(path: str | Path, column: str = "text", id_column: str | None = None) -> Texts:
    """The corpus file's texts (a `DataError` naming the file and line for an empty file or a row with no text)."""
    return load_texts(path, column, id_column=id_column)


def encode_corpus(predictor: Any, found: Texts, source: str | Path, batch_size: int = 32) -> Corpus:
    """Passage vectors of every text, with a progress bar and a line saying what was done and how long it took."""
    name = Path(source).name
    print(f"encoding the corpus: {len(found.texts)} texts of {source} (passage side)…", flush=True)
    started = time.perf_counter()
    vectors = predictor.encode(found.texts, batch_size, kind="passage", progress=True)
    print(f"corpus ready: {len(found.texts)} documents, {vectors.shape[1]} dimensions, "
          f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
    return Corpus(name, list(found.ids), list(found.texts), np.ascontiguousarray(vectors, dtype=np.float32))


def build_corpus(predictor: Any, texts: list[str], ids: list[str] | None = None, source: str = "corpus") -> Corpus:
    """A corpus from texts in memory (tests, Python callers), encoded at once without a progress bar."""
    vectors = predictor.encode(texts, kind="passage")
    ids = ids if ids is not None else [str(i) for i in range(len(texts))]
    return Corpus(source, list(ids), list(texts), np.ascontiguousarray(vectors, dtype=np.float32))
