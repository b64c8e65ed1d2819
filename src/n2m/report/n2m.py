"""N2M's part of the report: the test metrics by source length, output length against reference length, and
seeded samples with their references. The rows are the task's own `test_generations.jsonl` (the generations the
test metrics scored): generating the test split a second time for the report would double its cost."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from n2m.report.figures import Plot, ReportPart, Section, heading, new_figure, table
from n2m.report.run import Run
from n2m.shapes.n2m.caption_metrics import CAPTION_ONLY
from n2m.shapes.n2m.metrics import GenerationMetrics

TEST_GENERATIONS = "test_generations.jsonl"
BUCKETS = 4  # source-length quartiles
SAMPLES = 10


def length(text: str) -> int:
    """Words where the text has spaces, else characters (a Korean sentence has both; a Chinese one only the
    second)."""
    words = text.split()
    return len(words) if len(words) > 1 else len(text)


def scores(run: Run, rows: list[dict[str, Any]]) -> dict[str, float]:
    """The recipe's metrics (BERTScore left out: slow) over rows, computed as the test computed them."""
    # BERTScore left out (slow), and a captioner's split-wide and scene metrics (they are in results.json)
    skip = ("bertscore", *CAPTION_ONLY)
    names = [n for n in run.setting("model", "metrics", default=["bleu", "chrf"]) if n not in skip]
    metrics = GenerationMetrics(names, run.setting("model", "bleu_tokenize", default="13a"))
    metrics.update([r["prediction"] for r in rows], [r["references"] for r in rows])
    return {k: float(v) for k, v in metrics.compute().items()}


def sections(run: Run, rows: list[dict[str, Any]]) -> list[Section]:
    if not rows:
        return []
    section = Section("Generations")
    lengths = np.array([length(r["source"]) for r in rows])
    edges = np.unique(np.quantile(lengths, np.linspace(0, 1, BUCKETS + 1)).round())
    which = np.clip(np.searchsorted(edges, lengths, side="right") - 1, 0, max(0, len(edges) - 2))
    buckets = [b for b in range(max(1, len(edges) - 1)) if (which == b).any()]
    names = [f"{int(edges[b])}–{int(edges[min(b + 1, len(edges) - 1)])}" for b in buckets]
    by_bucket = [scores(run, [r for r, w in zip(rows, which, strict=True) if w == b]) for b in buckets]
    metrics = sorted(by_bucket[0])
    figure = new_figure(6.0, 3.8)
    ax = figure.add_subplot()
    width = 0.8 / max(1, len(metrics))
    for m, metric in enumerate(metrics):
        x = np.arange(len(buckets)) + m * width
        ax.bar(x, [s[metric] for s in by_bucket], width=width, label=metric, edgecolor="black")
    counts = [int((which == b).sum()) for b in buckets]
    ax.set_xticks(
        np.arange(len(buckets)) + width * (len(metrics) - 1) / 2,
        [f"{n}\n(n={c})" for n, c in zip(names, counts, strict=True)],
    )
    ax.set(xlabel="source length (words)", ylabel="score (0–100)", title="Test metrics by source length")
    ax.legend(fontsize="small")
    section.plots.append(Plot("metric_by_length", "Test metrics by source length", figure))

    output = np.array([length(r["prediction"]) for r in rows])
    reference = np.array([length(r["references"][0]) for r in rows])
    figure = new_figure(5.0, 4.6)
    ax = figure.add_subplot()
    ax.scatter(reference, output, s=14, alpha=0.6)
    top = max(1, int(max(reference.max(), output.max())))
    ax.plot([0, top], [0, top], color="gray", linestyle="--", label="output = reference")
    ax.set(
        xlabel="reference length",
        ylabel="output length",
        title=f"Output against reference length (mean ratio {output.sum() / max(1, reference.sum()):.2f})",
    )
    ax.legend(fontsize="small")
    section.plots.append(Plot("output_length", "Output against reference length", figure))

    sample = random.Random(0).sample(rows, min(SAMPLES, len(rows)))
    section.html = heading(f"{len(sample)} test rows (seeded)") + table(
        "samples",
        ["source", "output", "references"],
        [[r["source"], r["prediction"], " ‖ ".join(r["references"])] for r in sample],
    )
    section.numbers = {
        "by_length": {n: s for n, s in zip(names, by_bucket, strict=True)},
        "counts": counts,
        "overall": scores(run, rows),
        "length_ratio": float(output.sum() / max(1, reference.sum())),
    }
    return [section]


PART = ReportPart(TEST_GENERATIONS, sections)
