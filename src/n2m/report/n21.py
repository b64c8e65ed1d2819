"""N21's part of the report: a confusion matrix, per-class scores, calibration and the most confident mistakes
(classification); predicted against gold, error by gold score and the largest errors (regression)."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
from scipy import stats

from n2m.core.callbacks import TEST_PREDICTIONS
from n2m.report.figures import Plot, ReportPart, Section, heading, new_figure, table
from n2m.report.run import Run

SHOWN = 10  # rows of a mistakes table
BINS = 10  # of the reliability diagram


def text_of(gold: dict[str, Any]) -> str:
    pair = gold.get("text_pair")
    return gold.get("text", "") + (f" ‖ {pair}" if pair else "")


def confusion(rows: list[dict[str, Any]]) -> tuple[list[str], np.ndarray]:
    """Labels in the model's order and counts[gold, predicted]."""
    labels = list(rows[0]["prediction"]["probabilities"])
    where = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=int)
    for row in rows:
        counts[where[str(row["gold"]["label"])], where[row["prediction"]["label"]]] += 1
    return labels, counts


def per_class(labels: list[str], counts: np.ndarray) -> list[list[Any]]:
    """label, precision, recall, F1, support; then the macro average."""
    out: list[list[Any]] = []
    for i, label in enumerate(labels):
        tp, predicted, support = counts[i, i], counts[:, i].sum(), counts[i].sum()
        p = tp / predicted if predicted else 0.0
        r = tp / support if support else 0.0
        out.append([label, float(p), float(r), float(2 * p * r / (p + r)) if p + r else 0.0, int(support)])
    macro = [float(np.mean([row[k] for row in out])) for k in (1, 2, 3)]
    return [*out, ["macro average", *macro, int(counts.sum())]]


def classification(rows: list[dict[str, Any]]) -> list[Section]:
    labels, counts = confusion(rows)
    total = int(counts.sum())
    accuracy = float(np.trace(counts) / total)
    section = Section("Classes")
    figure = new_figure(1.8 + 0.6 * len(labels), 1.4 + 0.55 * len(labels))
    ax = figure.add_subplot()
    image = ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted", ylabel="gold", title=f"Confusion matrix ({total} test rows, accuracy {accuracy:.4f})")
    for (i, j), n in np.ndenumerate(counts):
        ax.text(j, i, str(n), ha="center", va="center", color="white" if n > counts.max() / 2 else "black")
    figure.colorbar(image, ax=ax, shrink=0.8)
    section.plots.append(Plot("confusion_matrix", "Confusion matrix", figure))
    scores = per_class(labels, counts)
    section.html += heading("Per class") + table("per_class", ["class", "precision", "recall", "F1", "support"], scores)

    confidence = np.array([max(r["prediction"]["probabilities"].values()) for r in rows])
    correct = np.array([str(r["gold"]["label"]) == r["prediction"]["label"] for r in rows], dtype=float)
    edges = np.linspace(0, 1, BINS + 1)
    which = np.clip(np.digitize(confidence, edges) - 1, 0, BINS - 1)
    filled = [b for b in range(BINS) if (which == b).any()]
    bin_acc = [float(correct[which == b].mean()) for b in filled]
    bin_conf = [float(confidence[which == b].mean()) for b in filled]
    bin_n = [int((which == b).sum()) for b in filled]
    ece = float(sum(n * abs(a - c) for n, a, c in zip(bin_n, bin_acc, bin_conf, strict=True)) / len(rows))
    figure = new_figure(5.2, 4.4)
    ax = figure.add_subplot()
    ax.bar(
        [edges[b] for b in filled],
        bin_acc,
        width=1 / BINS,
        align="edge",
        edgecolor="black",
        alpha=0.7,
        label="accuracy of the bin",
    )
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    ax.plot(bin_conf, bin_acc, marker="o", color="tab:red", linestyle="none", label="mean confidence")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="confidence (highest probability)",
        ylabel="accuracy",
        title=f"Reliability diagram (ECE {ece:.3f})",
    )
    ax.legend(fontsize="small", loc="upper left")
    section.plots.append(Plot("reliability", "Reliability diagram", figure))

    mistakes = sorted(
        (r for r in rows if str(r["gold"]["label"]) != r["prediction"]["label"]),
        key=lambda r: -max(r["prediction"]["probabilities"].values()),
    )[:SHOWN]
    section.html += heading("The most confident mistakes") + table(
        "mistakes",
        ["text", "gold", "predicted", "confidence"],
        [
            [
                text_of(r["gold"]),
                r["gold"]["label"],
                r["prediction"]["label"],
                max(r["prediction"]["probabilities"].values()),
            ]
            for r in mistakes
        ],
    )
    section.numbers = {
        "labels": labels,
        "confusion_matrix": counts.tolist(),
        "accuracy": accuracy,
        "per_class": scores,
        "reliability": {"accuracy": bin_acc, "confidence": bin_conf, "count": bin_n, "ece": ece},
    }
    return [section]


def multilabel(rows: list[dict[str, Any]]) -> list[Section]:
    labels = list(rows[0]["prediction"]["probabilities"])
    scores = []
    for label in labels:
        gold = np.array([label in (r["gold"]["label"] or []) for r in rows])
        predicted = np.array([label in r["prediction"]["labels"] for r in rows])
        tp = int((gold & predicted).sum())
        p = tp / predicted.sum() if predicted.sum() else 0.0
        r = tp / gold.sum() if gold.sum() else 0.0
        scores.append([label, float(p), float(r), float(2 * p * r / (p + r)) if p + r else 0.0, int(gold.sum())])
    section = Section("Labels", numbers={"per_label": scores})
    section.html = heading("Per label") + table("per_class", ["label", "precision", "recall", "F1", "support"], scores)
    return [section]


def regression(rows: list[dict[str, Any]]) -> list[Section]:
    gold = np.array([float(r["gold"]["label"]) for r in rows])
    predicted = np.array([float(r["prediction"]["score"]) for r in rows])
    pearson = float(stats.pearsonr(predicted, gold).statistic)
    spearman = float(stats.spearmanr(predicted, gold).statistic)
    slope, intercept = np.polyfit(gold, predicted, 1)
    section = Section("Scores")
    figure = new_figure(5.4, 5.0)
    ax = figure.add_subplot()
    ax.scatter(gold, predicted, s=14, alpha=0.6)
    line = np.array([gold.min(), gold.max()])
    ax.plot(line, slope * line + intercept, color="tab:red", label=f"fit: {slope:.2f}·gold + {intercept:.2f}")
    ax.plot(line, line, color="gray", linestyle="--", linewidth=1, label="predicted = gold")
    ax.set(
        xlabel="gold score",
        ylabel="predicted score",
        title=f"Predicted against gold (Pearson {pearson:.4f}, Spearman {spearman:.4f})",
    )
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    section.plots.append(Plot("scatter", "Predicted against gold", figure))

    edges = np.linspace(gold.min(), gold.max(), 6)
    which = np.clip(np.digitize(gold, edges) - 1, 0, len(edges) - 2)
    error = np.abs(predicted - gold)
    bins = [b for b in range(len(edges) - 1) if (which == b).any()]
    names = [f"{edges[b]:.1f}–{edges[b + 1]:.1f}" for b in bins]
    mean_error = [float(error[which == b].mean()) for b in bins]
    counts = [int((which == b).sum()) for b in bins]
    figure = new_figure(5.6, 3.6)
    ax = figure.add_subplot()
    bars = ax.bar(names, mean_error, color="tab:orange", edgecolor="black")
    ax.bar_label(bars, [f"n={n}" for n in counts], fontsize="small")
    ax.set(xlabel="gold score", ylabel="mean |predicted − gold|", title="Error by gold score")
    section.plots.append(Plot("error_by_gold", "Error by gold score", figure))

    largest = np.argsort(-error)[:SHOWN]
    section.html = heading("The largest errors") + table(
        "largest_errors",
        ["text", "text pair", "gold", "predicted", "error"],
        [
            [
                rows[i]["gold"].get("text", ""),
                rows[i]["gold"].get("text_pair") or "",
                float(gold[i]),
                float(predicted[i]),
                float(error[i]),
            ]
            for i in largest
        ],
    )
    section.numbers = {
        "pearson": pearson,
        "spearman": spearman,
        "count": len(rows),
        "fit": [slope, intercept],
        "error_by_gold": dict(zip(names, mean_error, strict=True)),
    }
    return [section]


def sections(run: Run, rows: list[dict[str, Any]]) -> list[Section]:
    if not rows:
        return []
    prediction = rows[0]["prediction"]
    if "score" in prediction:  # retrieval's test is ranked, not predicted row by row: it writes no rows
        return regression(rows)
    if "labels" in prediction:
        return multilabel(rows)
    if "label" in prediction:
        return classification(rows)
    return [Section("Predictions", html=f"<p>{html.escape(str(sorted(prediction)))}: no view for these</p>")]


PART = ReportPart(TEST_PREDICTIONS, sections)
