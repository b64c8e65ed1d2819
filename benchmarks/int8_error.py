"""Per-item error of ONNX int8 against fp32 on a KorSTS bi-encoder: what a user with a fixed score threshold meets.

Pearson hides it (a shift that moves every score alike keeps the ranking), so each setting of dynamic int8
quantization (`onnxruntime.quantization.quantize_dynamic`) is scored item by item against the fp32 graph on
KorSTS dev pairs: the largest, mean and 99th-percentile absolute score gap on the 0–5 scale, the lowest
cosine between a text's fp32 and int8 embeddings, Pearson against fp32, the file's size and its speed
(pairs/s over fp32's, batches of 32, best of `--rounds` interleaved passes, 2 threads). Then sentence vectors, what
`/v1/embeddings` and `n2m search` serve: each setting's cosine to fp32 for every distinct test sentence (FAQ
retrieval test questions and answers, KorSTS test sentences: min, 1st percentile, mean, share under 0.99) and its
sentences/s beside fp32 ONNX's and PyTorch's.

    python benchmarks/int8_error.py --model out/korsts          # an exported KorSTS bi-encoder
    python benchmarks/int8_error.py --train-steps 40            # or train one briefly from e5-small first

→ benchmarks/results/int8_error.json. `n2m export --quantize int8` uses the setting marked `default`
(`n2m.shapes.n21.onnx.INT8_SETTINGS`).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine, size_mb, today  # noqa: E402
from docs_pages import write_pages  # noqa: E402

KORSTS_DEV = ROOT / "data/korsts/sts-dev.tsv"
KORSTS_TEST = ROOT / "data/korsts/sts-test.tsv"
FAQ_TEST = ROOT / "data/korean_chatbot/faq/test.tsv"
RESULTS = ROOT / "benchmarks/results/int8_error.json"
THREADS = 2


def build_model(steps: int, work: Path) -> Path:
    """A KorSTS bi-encoder as the recipe makes it (e5-small, trimmed, mean pooling, cosine, `query: `),
    trained `steps` batches of 32 on KorSTS train, then exported as users get it (full vocabulary)."""
    import lightning as L

    from n2m.core.export import export_checkpoint
    from n2m.core.task import Optimization
    from n2m.shapes.n21.data import TextDataModule
    from n2m.shapes.n21.examples import Columns
    from n2m.shapes.n21.task import SequenceTask

    L.seed_everything(0)
    data = TextDataModule(
        train=str(ROOT / "data/korsts/sts-train.tsv"),
        val=str(KORSTS_DEV),
        columns=Columns(text="sentence1", text_pair="sentence2", label="score"),
        backbone="e5-small",
        objective="regression",
        pair_encoding="bi",
        score_range=(0.0, 5.0),
        text_prefix="query: ",
        batch_size=32,
        max_length=64,
        trim_vocab=True,
        cache_tokens=False,
    )
    task = SequenceTask.from_data(data, pooling="mean", loss="mse", optimization=Optimization(lr=3e-5))
    trainer = L.Trainer(max_steps=steps, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                        default_root_dir=work)  # fmt: skip
    trainer.fit(task, data)
    trainer.save_checkpoint(work / "korsts.ckpt")
    return export_checkpoint(work / "korsts.ckpt", work / "korsts")


def settings(fp32: Path) -> dict[str, dict[str, Any]]:
    """`quantize_dynamic` arguments per setting; node names come from the exported BERT graph."""
    import onnx

    from n2m.shapes.n21.onnx import INT8_SETTINGS

    graph = onnx.load(str(fp32), load_external_data=False).graph
    matmuls = [node.name for node in graph.node if node.op_type == "MatMul"]

    def nodes(pattern: str) -> list[str]:
        return [name for name in matmuls if re.search(pattern, name)]

    ffn_out = r"layer\.\d+/output/dense"  # intermediate (GELU, 1536 wide) → hidden
    return {
        "default": INT8_SETTINGS,
        "per_channel (the old default)": {"per_channel": True},
        "per_channel + reduce_range": {"per_channel": True, "reduce_range": True},
        "per_channel, MatMul only (embeddings fp32)": {"per_channel": True, "op_types_to_quantize": ["MatMul"]},
        "per_tensor, FFN output fp32": {"per_channel": False, "nodes_to_exclude": nodes(ffn_out)},
        # the two that quantize less: the FFN output (token outliers at <s>) and the embedding table (its Gather
        # dequantizes the whole table every batch) kept fp32; then only the attention output projections
        "per_tensor, MatMul only, FFN output fp32": {
            "per_channel": False, "op_types_to_quantize": ["MatMul"], "nodes_to_exclude": nodes(ffn_out)},
        "attention output projections only": {
            "per_channel": False, "nodes_to_quantize": nodes(r"attention/output/dense")},
    }  # fmt: skip


def korsts_pairs(limit: int | None) -> list[tuple[str, str]]:
    with KORSTS_DEV.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(r["sentence1"], r["sentence2"]) for r in rows[:limit]]


def vector_sentences(limit: int | None) -> dict[str, tuple[list[str], str]]:
    """Every distinct test sentence a user's vectors meet, with its side: the FAQ retrieval test questions (query)
    and their answers (passage), and both sentences of every KorSTS test pair (query, as the recipe encodes)."""

    def column(path: Path, name: str) -> list[str]:
        with path.open(encoding="utf-8") as f:
            return [row[name] for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]

    faq = FAQ_TEST
    sts = [t for name in ("sentence1", "sentence2") for t in column(KORSTS_TEST, name)]
    found = {
        "faq_questions": (column(faq, "question"), "query"),
        "faq_answers": (column(faq, "answer"), "passage"),
        "korsts_test_sentences": (sts, "query"),
    }
    return {name: (list(dict.fromkeys(texts))[:limit], kind) for name, (texts, kind) in found.items()}


def encode_all(predictor: Any, sentences: dict[str, tuple[list[str], str]]) -> tuple[np.ndarray, float]:
    """Unit vectors of every sentence set, one after another, and the seconds it took (batches of 32)."""
    start = time.perf_counter()
    vectors = [predictor.encode(texts, 32, kind=kind) for texts, kind in sentences.values()]
    return np.concatenate(vectors), time.perf_counter() - start


def cosine_figures(reference: np.ndarray, vectors: np.ndarray) -> dict[str, float]:
    cosine = (reference * vectors).sum(-1)  # both unit length
    return {
        "min_cosine": round(float(cosine.min()), 5),
        "p1_cosine": round(float(np.quantile(cosine, 0.01)), 5),
        "mean_cosine": round(float(cosine.mean()), 5),
        "share_below_0.99": round(float((cosine < 0.99).mean()), 4),
    }


def seconds(path: Path, predictor: Any, pairs: list[tuple[str, str]]) -> float:
    """One pass as the served predictor runs it (tokenize, batches of 32 longest-first, decode)."""
    from n2m.shapes.n21.onnx import OnnxPredictor, make_session

    onnx_predictor = OnnxPredictor(make_session(path, THREADS), predictor.tokenizer, predictor.card)
    start = time.perf_counter()
    onnx_predictor.predict_outputs(pairs, batch_size=32)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="an exported KorSTS bi-encoder folder")
    parser.add_argument("--train-steps", type=int, default=40, help="without --model: train this many steps")
    parser.add_argument("--pairs", type=int, default=None, help="the first N dev pairs (default: all 1500)")
    parser.add_argument("--rounds", type=int, default=1, help="timed passes per setting (the best counts)")
    parser.add_argument("--only", nargs="*", default=None, help="settings to run (default: all)")
    parser.add_argument(
        "--sentences", type=int, default=None, help="the first N of each test sentence set (default: all)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from n2m.shapes.n21.onnx import ONNX_FILE, agreement, export_onnx, make_session, quantize_int8, run_graph
    from n2m.shapes.n21.predictor import SequencePredictor

    work = Path(tempfile.mkdtemp(prefix="int8-error-"))
    model = args.model or build_model(args.train_steps, work)
    fp32 = model / ONNX_FILE
    if not fp32.is_file():
        export_onnx(model)
    predictor = SequencePredictor.from_pretrained(model)
    pairs = korsts_pairs(args.pairs)
    reference, fp32_vectors = run_graph(make_session(fp32), predictor, pairs)
    chosen = {k: v for k, v in settings(fp32).items() if args.only is None or k in args.only}
    files = {name: quantize_int8(fp32, work / f"int8-{i}.onnx", **kw) for i, (name, kw) in enumerate(chosen.items())}

    timings: dict[str, list[float]] = {name: [] for name in ["fp32", *files]}
    for _ in range(args.rounds):  # interleaved, so a neighbour's load falls on every setting alike
        timings["fp32"].append(seconds(fp32, predictor, pairs))
        for name, path in files.items():
            timings[name].append(seconds(path, predictor, pairs))
    fp32_s = min(timings["fp32"])
    results: dict[str, Any] = {"fp32": {"size_mb": size_mb(fp32), "pairs_per_s": round(len(pairs) / fp32_s, 1)}}
    for name, path in files.items():
        scores, vectors = run_graph(make_session(path), predictor, pairs)
        gaps = agreement(reference, scores, fp32_vectors, vectors)
        results[name] = {
            "settings": {
                k: v if k != "nodes_to_exclude" else f"{len(v)} MatMul nodes" for k, v in chosen[name].items()
            },
            "max_abs": gaps["max_abs_error"],
            "mean_abs": gaps["mean_abs_error"],
            "p99_abs": gaps["p99_abs_error"],
            "mean_signed": round(float((scores - reference).mean()), 4),
            "min_embedding_cosine": gaps["min_embedding_cosine"],
            "pearson_vs_fp32": round(float(np.corrcoef(scores, reference)[0, 1]), 5),
            "size_mb": size_mb(path),
            "speed_ratio": round(fp32_s / min(timings[name]), 2),
        }
        print(name, json.dumps(results[name]), flush=True)

    # sentence vectors: every test sentence, int8 against fp32 ONNX (and PyTorch's speed beside them)
    from n2m.shapes.n21.onnx import OnnxPredictor

    sentences = vector_sentences(args.sentences)
    fp32_predictor = OnnxPredictor(make_session(fp32, THREADS), predictor.tokenizer, predictor.card)
    reference, fp32_s = encode_all(fp32_predictor, sentences)
    _, torch_s = encode_all(predictor, sentences)
    count = len(reference)
    vectors_report: dict[str, Any] = {
        "sentences": {name: f"{len(texts)} ({kind} side)" for name, (texts, kind) in sentences.items()},
        "fp32": {"sentences_per_s": round(count / fp32_s, 1)},
        "torch": {"sentences_per_s": round(count / torch_s, 1), "speed_ratio": round(fp32_s / torch_s, 2)},
    }
    for name, path in files.items():
        got, int8_s = encode_all(OnnxPredictor(make_session(path, THREADS), predictor.tokenizer, predictor.card),
                                 sentences)  # fmt: skip
        vectors_report[name] = {**cosine_figures(reference, got), "sentences_per_s": round(count / int8_s, 1),
                                "speed_ratio": round(fp32_s / int8_s, 2)}  # fmt: skip
        print(name, "vectors", json.dumps(vectors_report[name]), flush=True)
    card = predictor.card
    report = {
        "machine": machine(),
        "date": today(),
        "model": f"{model.name}: KorSTS bi-encoder (e5-small, mean pooling, cosine, {card.encoding.max_length} "
        f"tokens max), {card.provenance.get('vocabulary', {}).get('exported', 'full')} vocabulary"
        + ("" if args.model else f", trained {args.train_steps} steps of 32 pairs"),
        "pairs": f"KorSTS dev, {'all ' if args.pairs is None else 'the first '}{len(pairs)} pairs",
        "scale": "scores on 0–5; errors are |int8 − fp32| per pair, both ONNX Runtime on this CPU",
        "threads": THREADS,
        "settings": results,
        "vectors": vectors_report,
        "vectors_what": "cosine between each test sentence's int8 and fp32 ONNX unit vectors (min, 1st percentile, "
        f"mean, share under 0.99); sentences/s encoding all of them in batches of 32 ({THREADS} ONNX Runtime "
        "threads); speed_ratio: sentences/s over fp32 ONNX's",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_pages("int8_error", written_to=args.out.parent)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
