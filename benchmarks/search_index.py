"""Which index `n2m search` uses past exact search: usearch's HNSW against exact search and FAISS, measured.

Two vector sets, both searched with the same queries (e5-small's vectors of the FAQ test questions, query side):

- real: e5-small (untrained, `SequencePredictor.from_backbone`) vectors of every FAQ answer (passage side);
- scaled: `--size` vectors (200,000 by default) drawn around the real ones (a real vector plus Gaussian noise with
  half the real set's per-dimension spread, made unit length): e5's shape (every vector in a narrow cone) at a size
  where memory and speed show.

Each method builds its index here (build s, file MB), then a fresh interpreter loads the file and searches every
query: as one batch (queries/s) and one query at a time (ms per query, what a server sees), and reports its memory
after the search: resident anonymous memory (what must fit in RAM) and resident file pages (page cache that a
memory-mapped index uses and the kernel may drop under pressure). Recall@10 is the share of exact search's top
10 that the method returns, averaged over the queries. Threads: `--threads` everywhere (torch, usearch, FAISS).

    python benchmarks/search_index.py                 # → benchmarks/results/search_index.json and .md
    python benchmarks/search_index.py --size 20000    # a quick look

FAISS is measured when installed (`pip install faiss-cpu`); n2m depends on usearch only.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
FAQ = ROOT / "data/korean_chatbot/faq"
RESULTS = ROOT / "benchmarks/results"
K = 10
ONE_AT_A_TIME = 200  # queries timed one by one


# ---- the child: load one index from its file, search, report memory ------------------------------------------
def memory_mb() -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {key: round(int(fields[key].split()[0]) / 1024, 1) for key in ("VmHWM", "RssAnon", "RssFile")}


def child(method: str, config: dict[str, Any]) -> dict[str, Any]:
    threads = config["threads"]
    queries = np.load(config["queries"])
    import torch

    torch.set_num_threads(threads)
    from n2m.shapes.n21.index import ExactIndex

    before = memory_mb()
    start = time.perf_counter()
    path = config["path"]
    if method == "exact (in memory)":
        vectors = np.load(path)
        search = ExactIndex(vectors).search
    elif method == "exact (memory-mapped, blocks)":
        vectors = np.load(path, mmap_mode="r")
        search = ExactIndex(vectors).search
    elif method.startswith("usearch"):
        from usearch.index import Index

        graph = Index.restore(path, view="view" in method)
        graph.expansion_search = config["expansion_search"]

        def search(q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            found = graph.search(np.ascontiguousarray(q, dtype=np.float32), k, threads=threads)
            return 1 - found.distances, found.keys.reshape(len(q), -1).astype(np.int64)
    else:
        import faiss

        faiss.omp_set_num_threads(threads)
        flags = faiss.IO_FLAG_MMAP_IFC if "mmap" in method else 0
        loaded = faiss.read_index(path, flags) if flags else faiss.read_index(path)
        if "HNSW" in method:
            loaded.hnsw.efSearch = config["ef_search"]
        else:
            loaded.nprobe = config["nprobe"]

        def search(q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            scores, rows = loaded.search(np.ascontiguousarray(q, dtype=np.float32), k)
            return scores, rows

    load_s = time.perf_counter() - start
    search(queries[:8], K)  # warm: first-touch costs belong to loading
    start = time.perf_counter()
    _, rows = search(queries, K)
    batch_s = time.perf_counter() - start
    start = time.perf_counter()
    for q in queries[:ONE_AT_A_TIME]:
        search(q[None, :], K)
    single_ms = (time.perf_counter() - start) / min(ONE_AT_A_TIME, len(queries)) * 1000
    np.save(config["rows"], rows)
    after = memory_mb()
    return {
        "load_s": round(load_s, 3),
        "queries_per_s": round(len(queries) / batch_s, 1),
        "ms_per_query_one_at_a_time": round(single_ms, 3),
        "peak_rss_mb": after["VmHWM"],
        "rss_anon_mb": after["RssAnon"],
        "rss_file_mb": after["RssFile"],
        "rss_before_load_mb": before["VmHWM"],
    }


def run_child(method: str, config: dict[str, Any]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", method, "--config-json", json.dumps(config)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if done.returncode:
        raise RuntimeError(f"{method}: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- the parent: vectors, indexes, figures ----------------------------------------------------------------------
def read_column(path: Path, column: str) -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        return [row[column] for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]


def real_vectors(work: Path) -> tuple[np.ndarray, np.ndarray]:
    """e5-small's FAQ answer (corpus) and test question (query) vectors, encoded once and kept in `work`."""
    corpus_file, query_file = work / "faq_answers.npy", work / "faq_questions.npy"
    if not corpus_file.is_file():
        from n2m.shapes.n21.predictor import SequencePredictor

        predictor = SequencePredictor.from_backbone("e5-small")
        answers = sorted(set(read_column(FAQ / "answers.tsv", "answer")))
        questions = list(dict.fromkeys(read_column(FAQ / "test.tsv", "question")))
        np.save(query_file, predictor.encode(questions, 64, kind="query", progress=True))
        np.save(corpus_file, predictor.encode(answers, 64, kind="passage", progress=True))
    return np.load(corpus_file), np.load(query_file)


def scaled_vectors(real: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """`size` unit vectors, each a real one plus Gaussian noise of half the real set's per-dimension spread."""
    rng = np.random.default_rng(seed)
    out = np.empty((size, real.shape[1]), np.float32)
    spread = real.std(axis=0) / 2
    for start in range(0, size, 50_000):
        count = min(50_000, size - start)
        part = real[rng.integers(0, len(real), count)] + rng.standard_normal((count, real.shape[1])) * spread
        out[start : start + count] = part / np.linalg.norm(part, axis=1, keepdims=True)
    return out


def recall(rows: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(rows.tolist(), exact.tolist(), strict=True)]))


def measure_set(name: str, vectors: np.ndarray, queries: np.ndarray, work: Path, threads: int) -> dict[str, Any]:
    from usearch.index import Index

    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    base = {"threads": threads, "queries": str(folder / "queries.npy"), "vectors": str(folder / "vectors.npy")}
    np.save(base["queries"], queries)
    np.save(base["vectors"], vectors)
    methods: dict[str, dict[str, Any]] = {
        "exact (in memory)": {"path": base["vectors"], "build_s": 0.0},
        "exact (memory-mapped, blocks)": {"path": base["vectors"], "build_s": 0.0},
    }
    start = time.perf_counter()
    graph = Index(ndim=vectors.shape[1], metric="ip", dtype="f32", connectivity=16, expansion_add=128)
    graph.add(np.arange(len(vectors)), vectors, threads=threads)
    build_s = time.perf_counter() - start
    graph.save(str(folder / "index.usearch"))
    del graph
    view = "memory-mapped view"
    for how, ef in ((view, 128), ("loaded", 128), (view, 64), (view, 256)):
        methods[f"usearch HNSW connectivity 16, expansion 128/{ef} ({how})"] = {
            "path": str(folder / "index.usearch"), "build_s": build_s, "expansion_search": ef}  # fmt: skip
    try:
        import faiss
    except ImportError:
        faiss = None
    if faiss is not None:
        faiss.omp_set_num_threads(threads)
        start = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 128
        hnsw.add(vectors)
        built = time.perf_counter() - start
        faiss.write_index(hnsw, str(folder / "hnsw.faiss"))
        del hnsw
        for how, ef in (("memory-mapped", 128), ("loaded", 128), ("memory-mapped", 64), ("memory-mapped", 256)):
            methods[f"faiss HNSWFlat M 32, efConstruction 128, efSearch {ef} ({how})"] = {
                "path": str(folder / "hnsw.faiss"), "build_s": built, "ef_search": ef}  # fmt: skip
        start = time.perf_counter()
        lists = max(16, int(4 * np.sqrt(len(vectors))))
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(vectors.shape[1]), vectors.shape[1], lists,
                                 faiss.METRIC_INNER_PRODUCT)  # fmt: skip
        ivf.train(vectors[np.random.default_rng(0).permutation(len(vectors))[: lists * 40]])
        ivf.add(vectors)
        built = time.perf_counter() - start
        faiss.write_index(ivf, str(folder / "ivf.faiss"))
        del ivf
        for probes in (16, 64):
            methods[f"faiss IVFFlat {lists} lists, nprobe {probes} (memory-mapped)"] = {
                "path": str(folder / "ivf.faiss"), "build_s": built, "nprobe": probes}  # fmt: skip

    results: dict[str, Any] = {}
    exact_rows: np.ndarray | None = None
    for method, settings in methods.items():
        config = {**base, **settings, "rows": str(folder / "rows.npy")}
        got = run_child(method, config)
        rows = np.load(config["rows"])
        if exact_rows is None:
            exact_rows = rows  # the first method is exact search in memory: the reference
        path = Path(settings["path"])
        results[method] = {
            f"recall@{K}": round(recall(rows, exact_rows), 4),
            "build_s": round(settings["build_s"], 2),
            "file_mb": round(path.stat().st_size / 1e6, 1),
            **got,
        }
        print(name, method, json.dumps(results[method]), flush=True)
    return {"vectors": list(vectors.shape), "queries": len(queries), "methods": results}


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Search index: usearch HNSW against exact search and FAISS ({report['date']}, {report['machine']})",
        "",
        report["what"],
        "",
        f"Chosen: {report['chosen']}",
    ]
    for name, measured in report["sets"].items():
        rows, dim = measured["vectors"]
        lines += ["", f"## {name}: {rows:,} × {dim} vectors, {measured['queries']} queries", "",
                  "| method | recall@10 | build s | file MB | load s | queries/s (batch) | ms/query (one at a time) "
                  "| RSS anon MB | RSS file MB | peak RSS MB |",
                  "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for method, r in measured["methods"].items():
            lines.append(f"| {method} | {r['recall@10']} | {r['build_s']} | {r['file_mb']} | {r['load_s']} | "
                         f"{r['queries_per_s']} | {r['ms_per_query_one_at_a_time']} | {r['rss_anon_mb']} | "
                         f"{r['rss_file_mb']} | {r['peak_rss_mb']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=200_000, help="vectors in the scaled set")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/n2m-search-index"))
    parser.add_argument("--out", default="search_index", help="results name under benchmarks/results/")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--config-json", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, json.loads(args.config_json))))
        return

    import usearch
    from _measure import machine, today, write_results

    from n2m.shapes.n21.index import EXACT_LIMIT, HNSW_SETTINGS

    args.work.mkdir(parents=True, exist_ok=True)
    corpus, queries = real_vectors(args.work)
    sets = {
        "real: e5-small vectors of the FAQ answers": measure_set("real", corpus, queries, args.work, args.threads),
        "scaled: drawn around the real vectors": measure_set(
            "scaled", scaled_vectors(corpus, args.size), queries, args.work, args.threads
        ),
    }
    try:
        import faiss

        faiss_version = faiss.__version__
    except ImportError:
        faiss_version = None
    report = {
        "machine": machine(),
        "date": today(),
        "threads": args.threads,
        "libraries": {"usearch": usearch.__version__, "faiss-cpu": faiss_version},
        "usearch_settings": HNSW_SETTINGS,
        "exact_limit": EXACT_LIMIT,
        "what": "Queries: e5-small vectors of the distinct FAQ test questions. Recall@10: the share of exact "
        "search's top 10 returned, mean over queries. Build and queries/s with the threads given; memory is the "
        "searching process's after the search (anonymous: must fit in RAM; file: page cache of a memory-mapped "
        "index, which the kernel can drop).",
        "chosen": f"usearch HNSW {HNSW_SETTINGS}, searched as a memory-mapped view; `n2m search --index auto` "
        f"is exact up to {EXACT_LIMIT:,} documents and usearch above.",
        "sets": sets,
    }
    write_results(RESULTS, args.out, report, markdown(report))
    print(f"wrote {RESULTS / args.out}.json and .md")


if __name__ == "__main__":
    main()
