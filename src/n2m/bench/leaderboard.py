"""The suite's leaderboard: `suite.json` (every task's metric, value, fit time, machine, date, overrides),
`suite.md` (a Markdown table) and `suite.html` (the table and a bar chart per task, PNGs embedded, nothing
fetched), optionally beside another suite's numbers (`--compare`)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from n2m.provenance import machine_description, today
from n2m.report.figures import new_figure, png_bytes, table
from n2m.report.page import STYLE

SUITE_JSON, SUITE_MD, SUITE_HTML = "suite.json", "suite.md", "suite.html"
METRIC_NAMES = {  # in the order a run's metrics are listed
    "test/pearson": "Pearson", "test/spearman": "Spearman", "test/accuracy": "accuracy", "test/f1_macro": "macro-F1",
    "test/f1": "entity F1", "test/precision": "precision", "test/recall": "recall", "test/mrr10": "MRR@10",
    "test/recall1": "Recall@1", "test/recall10": "Recall@10", "test/ndcg10": "nDCG@10", "test/cider": "CIDEr-D",
    "test/bleu": "BLEU", "test/chrf": "chrF", "test/chrf++": "chrF++", "test/rouge1": "ROUGE-1",
    "test/rouge2": "ROUGE-2", "test/rougeL": "ROUGE-L", "test/object_accuracy": "objects right %",
    "test/count_accuracy": "counts right %",
}  # fmt: skip
# 0-100, as SacreBLEU's (CIDEr-D ×100, as COCO reports it)
PERCENT = {"test/bleu", "test/chrf", "test/chrf++", "test/rouge1", "test/rouge2", "test/rougeL", "test/cider",
           "test/object_accuracy", "test/count_accuracy"}  # fmt: skip


def metric_name(metric: str | None) -> str:
    return METRIC_NAMES.get(metric or "", (metric or "?").removeprefix("test/"))


def shown(metric: str | None, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if metric in PERCENT else f"{value:.4f}"


def minutes(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds / 60:.1f} min"


def leaderboard(name: str, suite_file: str, tasks: dict[str, dict[str, Any]], overrides: list[str],
                quick: bool) -> dict[str, Any]:  # fmt: skip
    return {"suite": name, "suite_file": suite_file, "machine": machine_description(), "date": today(),
            "quick": quick, "overrides": overrides, "tasks": tasks}  # fmt: skip


def read_leaderboard(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / SUITE_JSON
    return json.loads(path.read_text(encoding="utf-8"))


def label(board: dict[str, Any], folder: Path) -> str:
    """A suite's name in a comparison: its folder, and what it overrode."""
    extra = ", ".join(board.get("overrides") or [])
    return f"{folder.name} ({extra})" if extra else folder.name


def rows(board: dict[str, Any], other: dict[str, Any] | None) -> tuple[list[str], list[list[str]]]:
    headers = ["task", "metric", "value"]
    if other is not None:
        headers += ["compared", "Δ"]
    headers += ["fit time", "status", "date", "machine"]
    out = []
    for name, t in board["tasks"].items():
        row = [name, metric_name(t["metric"]), shown(t["metric"], t["value"])]
        if other is not None:
            o = (other.get("tasks") or {}).get(name) or {}
            theirs = o.get("value") if o.get("metric") == t["metric"] else None
            delta = t["value"] - theirs if t["value"] is not None and theirs is not None else None
            row += [
                shown(t["metric"], theirs),
                "—" if delta is None else "+" * (delta >= 0) + shown(t["metric"], delta),
            ]
        status = t["status"] if t["status"] != "failed" else f"failed: {t.get('error') or '?'}"
        row += [minutes(t.get("fit_s")), status, t.get("date") or "", t.get("machine") or ""]
        out.append(row)
    return headers, out


def markdown(board: dict[str, Any], folder: Path, other: dict[str, Any] | None, other_dir: Path | None) -> str:
    headers, body = rows(board, other)
    cell = lambda text: str(text).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = [f"# n2m bench: {board['suite']}", "", *facts(board, folder, other, other_dir), ""]
    lines += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def facts(board: dict[str, Any], folder: Path, other: dict[str, Any] | None, other_dir: Path | None) -> list[str]:
    overrides = ", ".join(f"`{o}`" for o in board.get("overrides") or []) or "none"
    quick = "; **quick** (CI limits: not a measurement)" if board.get("quick") else ""
    out = [
        f"- suite file: `{board['suite_file']}`; overrides: {overrides}{quick}",
        f"- bench run on {board['machine']}, {board['date']}; each task's own machine and date are in its row",
    ]
    if other is not None and other_dir is not None:
        out.append(f"- compared: {label(other, other_dir)} ({other_dir}), run {other.get('date', '?')}")
    return out


def bar_charts(board: dict[str, Any], folder: Path, other: dict[str, Any] | None,
               other_dir: Path | None) -> dict[str, bytes]:  # fmt: skip
    """One small horizontal bar chart per task with a value: this suite's bar (and the compared suite's)."""
    charts = {}
    for name, t in board["tasks"].items():
        bars = [(label(board, folder), t["value"])]
        if other is not None and other_dir is not None:
            o = (other.get("tasks") or {}).get(name) or {}
            if o.get("metric") == t["metric"]:
                bars.append((label(other, other_dir), o.get("value")))
        bars = [(who, v) for who, v in bars if v is not None]
        if not bars:
            continue
        figure = new_figure(5.2, 0.9 + 0.45 * len(bars))
        ax = figure.add_subplot()
        colors = ["#4c72b0", "#dd8452"][: len(bars)]
        ax.barh([who for who, _ in bars][::-1], [v for _, v in bars][::-1], color=colors[::-1])
        for i, (_, v) in enumerate(bars[::-1]):
            ax.text(v, i, f" {shown(t['metric'], v)}", va="center", fontsize=8)
        values = [v for _, v in bars]
        top = 100.0 if t["metric"] in PERCENT else 1.0  # the metric's whole range: bars of two suites compare
        ax.set_xlim(min(0.0, *values), max(top, *(v * 1.15 for v in values)))
        ax.set_title(f"{name} · {metric_name(t['metric'])}", fontsize=9)
        ax.tick_params(labelsize=8)
        charts[name] = png_bytes(figure)
    return charts


def page(board: dict[str, Any], folder: Path, other: dict[str, Any] | None, other_dir: Path | None) -> str:
    headers, body = rows(board, other)
    parts = [f"<h1>n2m bench: {html.escape(board['suite'])}</h1>", "<ul>"]
    for line in facts(board, folder, other, other_dir):
        parts.append(f"<li>{html.escape(line.removeprefix('- ').replace('`', '').replace('**', ''))}</li>")
    parts += ["</ul>", table("leaderboard", headers, body), '<h2>By task</h2><div class="plots">']
    for name, png in bar_charts(board, folder, other, other_dir).items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<figure class="plot" id="plot-{html.escape(name)}"><img alt="{html.escape(name)}" '
                     f'src="data:image/png;base64,{data}"></figure>')  # fmt: skip
    parts.append("</div>")
    title = html.escape(f"n2m bench: {board['suite']}")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")  # fmt: skip


def write_leaderboard(folder: str | Path, board: dict[str, Any], compare: str | Path | None = None) -> list[Path]:
    """suite.json, suite.md and suite.html in `folder`; `compare`: another suite's folder, a column beside."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    other_dir = Path(compare) if compare else None
    other = read_leaderboard(other_dir) if other_dir else None
    paths = [folder / SUITE_JSON, folder / SUITE_MD, folder / SUITE_HTML]
    paths[0].write_text(json.dumps(board, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths[1].write_text(markdown(board, folder, other, other_dir), encoding="utf-8")
    paths[2].write_text(page(board, folder, other, other_dir), encoding="utf-8")
    return paths
