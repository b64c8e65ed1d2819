"""A corpus served for search (`n2m serve MODEL --corpus FILE`): its texts, ids and passage vectors, encoded once
at start-up, and exact cosine search over them.

The file is read and checked before the model loads (an empty file, or a row with no text, is a one-line error
naming the file and the line), through the same reader as `n2m search` (`n21.examples.load_texts`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from n2m.shapes.n21.examples import Texts
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


def encode_corpus(
    predictor: Any,
    texts: Texts | list[str],
    source: str | Path = "corpus",
    batch_size: int = 32,
    progress: bool = False,
) -> Corpus:
    """Passage vectors of every text (a file's `Texts`, read with `load_texts` before the model loads, or texts in
    memory, numbered from 0); `progress`: a bar and a line saying what was done and how long it took."""
    found = texts if isinstance(texts, Texts) else Texts(list(texts), [str(i) for i in range(len(texts))], [])
    if progress:
        print(f"encoding the corpus: {len(found.texts)} texts of {source} (passage side)…", flush=True)
    started = time.perf_counter()
    vectors = predictor.encode(found.texts, batch_size, kind="passage", progress=progress)
    if progress:
        print(f"corpus ready: {len(found.texts)} documents, {vectors.shape[1]} dimensions, "
              f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
    return Corpus(Path(source).name, found.ids, found.texts, np.ascontiguousarray(vectors, dtype=np.float32))
