"""N2N's part of the report: per-type precision / recall / F1 and a type confusion table over exact spans, and
sentences with gold and predicted entities side by side (as spaCy's displacy draws them); per-tag scores for
the `tags` scheme."""

from __future__ import annotations

import colorsys
import html
import random
from collections import Counter
from typing import Any

from n2m.core.callbacks import TEST_PREDICTIONS
from n2m.report.figures import Plot, ReportPart, Section, heading, new_figure, table
from n2m.report.run import Run
from n2m.shapes.n2n.spans import bio_to_spans

NONE = "(none)"  # a span the other side does not have at the same place
SENTENCES = 8

Char = tuple[int, int, str]  # start, end, type over the sentence's text


def gold_spans(gold: dict[str, Any]) -> list[Char]:
    """The gold tags read as the test metric reads them, mapped onto the text."""
    units = gold["units"]
    return [(units[s.start][0], units[s.end - 1][1], s.label) for s in bio_to_spans(gold["tags"])]


def predicted_spans(prediction: dict[str, Any]) -> list[Char]:
    return [(e["start"], e["end"], e["type"]) for e in prediction["entities"]]


def counts_by_type(rows: list[dict[str, Any]]) -> dict[str, Counter]:
    """Exact-span true positives, predicted and gold counts per type."""
    tp, predicted, gold = Counter(), Counter(), Counter()
    for row in rows:
        g, p = set(gold_spans(row["gold"])), set(predicted_spans(row["prediction"]))
        tp.update(t for *_, t in g & p)
        predicted.update(t for *_, t in p)
        gold.update(t for *_, t in g)
    return {"tp": tp, "predicted": predicted, "gold": gold}


def prf(tp: int, predicted: int, gold: int) -> tuple[float, float, float]:
    p = tp / predicted if predicted else 0.0
    r = tp / gold if gold else 0.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def type_confusion(rows: list[dict[str, Any]]) -> Counter:
    """(gold type, predicted type) of spans with the same boundaries; NONE where one side has nothing there."""
    cells: Counter = Counter()
    for row in rows:
        g = {(a, b): t for a, b, t in gold_spans(row["gold"])}
        p = {(a, b): t for a, b, t in predicted_spans(row["prediction"])}
        cells.update((g[k], p.get(k, NONE)) for k in g)
        cells.update((NONE, p[k]) for k in p if k not in g)
    return cells


def color(kind: str, kinds: list[str]) -> str:
    r, g, b = colorsys.hls_to_rgb(kinds.index(kind) / max(1, len(kinds)), 0.82, 0.75)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def marked(text: str, spans: list[Char], kinds: list[str]) -> str:
    """The text with its entities highlighted and labelled."""
    out, at = [], 0
    for start, end, kind in sorted(spans):
        if start < at:
            continue
        out.append(html.escape(text[at:start]))
        out.append(
            f'<mark class="ent" style="background:{color(kind, kinds)}">{html.escape(text[start:end])}'
            f'<span class="ent-type">{html.escape(kind)}</span></mark>'
        )
        at = end
    out.append(html.escape(text[at:]))
    return "".join(out)


def entities(rows: list[dict[str, Any]]) -> list[Section]:
    counts = counts_by_type(rows)
    kinds = sorted(set(counts["gold"]) | set(counts["predicted"]))
    scores = [[k, *prf(counts["tp"][k], counts["predicted"][k], counts["gold"][k]), counts["gold"][k]] for k in kinds]
    total = [sum(c.values()) for c in (counts["tp"], counts["predicted"], counts["gold"])]
    micro = prf(*total)
    section = Section("Entities")
    figure = new_figure(1.8 + 0.5 * len(kinds), 3.6)
    ax = figure.add_subplot()
    ax.bar(kinds, [s[3] for s in scores], color="tab:green", edgecolor="black")
    ax.set(ylim=(0, 1), xlabel="entity type", ylabel="F1", title=f"F1 by entity type (micro F1 {micro[2]:.4f})")
    ax.tick_params(axis="x", rotation=45)
    section.plots.append(Plot("f1_by_type", "F1 by entity type", figure))
    section.html += heading("Per entity type (exact spans)") + table(
        "per_type", ["type", "precision", "recall", "F1", "support"], [*scores, ["micro average", *micro, total[2]]]
    )
    cells = type_confusion(rows)
    axis = [*kinds, NONE]
    section.html += heading("Type confusion (spans with the same boundaries; rows gold, columns predicted)") + table(
        "type_confusion", ["gold \\ predicted", *axis], [[g, *(cells[g, p] for p in axis)] for g in axis]
    )
    wrong = [r for r in rows if set(gold_spans(r["gold"])) != set(predicted_spans(r["prediction"]))]
    right = [r for r in rows if r not in wrong and r["prediction"]["entities"]]
    chosen = random.Random(0).sample(wrong, min(len(wrong), SENTENCES * 3 // 4))
    chosen += random.Random(0).sample(right, min(len(right), SENTENCES - len(chosen)))
    side_by_side = [
        [
            marked(r["gold"]["text"], gold_spans(r["gold"]), kinds),
            marked(r["gold"]["text"], predicted_spans(r["prediction"]), kinds),
        ]
        for r in chosen
    ]
    section.html += heading("Sentences (mistakes first; seeded)") + table(
        "sentences", ["gold", "predicted"], side_by_side, raw=True
    )
    section.numbers = {
        "per_type": scores,
        "micro": {"precision": micro[0], "recall": micro[1], "f1": micro[2]},
        "type_confusion": {f"{g}|{p}": n for (g, p), n in cells.items()},
    }
    return [section]


def tags(rows: list[dict[str, Any]]) -> list[Section]:
    pairs = [(g, w["tag"]) for r in rows for g, w in zip(r["gold"]["tags"], r["prediction"]["words"], strict=True)]
    kinds = sorted({g for g, _ in pairs})
    scores = []
    for kind in kinds:
        tp = sum(g == p == kind for g, p in pairs)
        scores.append(
            [
                kind,
                *prf(tp, sum(p == kind for _, p in pairs), sum(g == kind for g, _ in pairs)),
                sum(g == kind for g, _ in pairs),
            ]
        )
    accuracy = sum(g == p for g, p in pairs) / max(1, len(pairs))
    section = Section("Tags", numbers={"accuracy": accuracy, "per_tag": scores})
    section.html = f"<p>accuracy {accuracy:.4f} over {len(pairs)} units</p>" + table(
        "per_type", ["tag", "precision", "recall", "F1", "support"], scores
    )
    return [section]


def sections(run: Run, rows: list[dict[str, Any]]) -> list[Section]:
    if not rows:
        return []
    return entities(rows) if "entities" in rows[0]["prediction"] else tags(rows)


PART = ReportPart(TEST_PREDICTIONS, sections)
