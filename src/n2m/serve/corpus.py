"""A corpus served for search (`n2m serve MODEL --corpus FILE`): its texts, ids and the index over their passage
vectors.

The file is read and checked before the model loads (an empty file, or a row with no text, is a one-line error
naming the file and the line), through the same reader as `n2m search` (`n21.examples.load_texts`). From a file,
the vectors and index are kept as `n2m search` keeps them (`n21.index.open_corpus`: exact up to 100,000
documents, an HNSW graph above, saved next to the corpus and read back by the next start with the same model
and texts); texts in memory are encoded and searched exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from n2m.shapes.n21.examples import Texts
from n2m.shapes.n21.index import ExactIndex, VectorIndex
from n2m.shapes.n21.search import kept_corpus

MAX_TOP_K = 100  # hits per search request (the schema's `maximum`)


@dataclass
class Corpus:
    source: str  # the file's name, shown on the page
    ids: list[str]
    texts: list[str]
    index: VectorIndex  # over (N, H) unit passage vectors: a dot product is the cosine

    def __len__(self) -> int:
        return len(self.texts)

    def search(self, query: np.ndarray, k: int) -> list[dict[str, Any]]:
        """The `k` documents nearest one unit query vector, best first: rank (from 1), id, text, score."""
        scores, rows = self.index.search(query[None, :], k)
        return [
            {"rank": rank + 1, "id": self.ids[row], "text": self.texts[row], "score": float(score)}
            for rank, (score, row) in enumerate(zip(scores[0].tolist(), rows[0].tolist(), strict=True))
        ]


def encode_corpus(
    predictor: Any, texts: Texts | list[str], source: str | Path = "corpus", batch_size: int = 32
) -> Corpus:
    """Texts in memory (numbered from 0 unless a file's `Texts`), encoded (passage side) and searched exactly."""
    found = texts if isinstance(texts, Texts) else Texts(list(texts), [str(i) for i in range(len(texts))], [])
    vectors = predictor.encode(found.texts, batch_size, kind="passage")
    return Corpus(Path(source).name, found.ids, found.texts, ExactIndex(np.ascontiguousarray(vectors, np.float32)))


def open_served_corpus(
    predictor: Any, texts: Texts, path: str | Path, model: str, backend: str, **options: Any
) -> Corpus:
    """A corpus file's vectors and index as `n2m search` keeps them (`n21.search.kept_corpus`, `options`)."""
    print(f"the corpus: {len(texts.texts)} texts of {path} (passage side)…", flush=True)
    started = time.perf_counter()
    saved = kept_corpus(predictor, texts.texts, path, model, backend=backend, **options)
    print(f"corpus ready in {time.perf_counter() - started:.1f} s", flush=True)
    return Corpus(Path(path).name, texts.ids, texts.texts, saved.index)
