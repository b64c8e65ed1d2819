"""How long scoring a generated split takes: torchmetrics' `CHRFScore` and `SacreBLEUScore` updated batch by batch
(what n2m used until 2026-12-03) against `n2m.shapes.n2m.metrics.GenerationMetrics` (SacreBLEU over the split's
texts at `compute()`), on the captioning test split: each image's last caption stands for a prediction, scored
against its other captions (data/ko-caption/test.jsonl, 300 images). Same process, alternating rounds, best of 3.

    python benchmarks/scoring_speed.py     # → benchmarks/results/scoring_speed.json (about a minute)
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine, today, write_results  # noqa: E402
from docs_pages import write_pages  # noqa: E402

TEST = ROOT / "data/ko-caption/test.jsonl"
BATCH = 64  # the captioning recipe's eval_batch_size
ROUNDS = 3


def split() -> tuple[list[str], list[list[str]]]:
    captions: dict[str, list[str]] = defaultdict(list)
    for line in TEST.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        captions[row["image"]].append(row["caption"])
    return [c[-1] for c in captions.values()], [c[:-1] for c in captions.values()]


def torchmetrics_scores(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    from torchmetrics.text import CHRFScore, SacreBLEUScore

    metrics = {"bleu": SacreBLEUScore(tokenize="char"), "chrf": CHRFScore(n_word_order=0)}
    for i in range(0, len(predictions), BATCH):
        for metric in metrics.values():
            metric.update(predictions[i : i + BATCH], references[i : i + BATCH])
    return {name: 100 * float(metric.compute()) for name, metric in metrics.items()}


def n2m_scores(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    from n2m.shapes.n2m.metrics import GenerationMetrics

    metrics = GenerationMetrics(["bleu", "chrf"], "char")
    for i in range(0, len(predictions), BATCH):
        metrics.update(predictions[i : i + BATCH], references[i : i + BATCH])
    return metrics.compute()


def main() -> None:
    predictions, references = split()
    runs = {"torchmetrics": torchmetrics_scores, "n2m": n2m_scores}
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    scores: dict[str, dict[str, float]] = {}
    for _ in range(ROUNDS):
        for name, score in runs.items():
            start = time.perf_counter()
            scores[name] = score(predictions, references)
            seconds[name].append(time.perf_counter() - start)
    best = {name: round(min(s), 3) for name, s in seconds.items()}
    results = {
        "machine": machine(), "date": today(), "file": str(TEST.relative_to(ROOT)), "predictions": len(predictions),
        "references": sum(map(len, references)), "batch": BATCH,
        "seconds": best, "ratio": round(best["torchmetrics"] / best["n2m"], 1),
        "scores": {name: {k: round(v, 4) for k, v in s.items()} for name, s in scores.items()},
    }  # fmt: skip
    markdown = (f"Scoring {results['predictions']} captions against {results['references']} references (BLEU char + "
                f"chrF): torchmetrics {best['torchmetrics']} s, n2m (SacreBLEU) {best['n2m']} s, ×{results['ratio']}."
                f"\n")  # fmt: skip
    write_results(ROOT / "benchmarks/results", "scoring_speed", results, markdown)
    write_pages("scoring_speed")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
