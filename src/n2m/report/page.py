"""The report of one run: `report.html` (one self-contained file: plots embedded as PNG, styles inline, nothing
fetched) and the plots as files in `report/`, beside the numbers they show (`report/numbers.json`)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from n2m.registry import get_shape, load_object
from n2m.report.curves import curves_section
from n2m.report.figures import ReportPart, Section, fmt, png_bytes, table
from n2m.report.run import Run, load_run, read_jsonl

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1100px;padding:1rem 1.5rem;
color:#1d1d1f;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.plots{display:flex;flex-wrap:wrap;gap:1rem}figure.plot{margin:0}figure.plot img{max-width:100%;height:auto;
border:1px solid #e5e5e5}figcaption{font-size:.85rem;color:#555}
table.table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
table.table th,table.table td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
table.table th{background:#f5f5f7}table.table td{max-width:32rem;overflow-wrap:anywhere}
mark.ent{padding:.1rem .3rem;margin:0 .1rem;border-radius:.3rem;line-height:2}
.ent-type{font-size:.65rem;font-weight:bold;margin-left:.3rem;text-transform:uppercase}
pre{background:#f5f5f7;padding:.75rem;overflow:auto;font-size:.8rem}.muted{color:#666}
"""
REPORT_HTML = "report.html"
PLOTS_DIR = "report"


def report_part(shape: str) -> ReportPart:
    """The shape's part of the report, as the registry names it."""
    return load_object(get_shape(shape).report)


def run_section(run: Run) -> Section:
    """Every shape: the machine, the timings and the test scores (results.json)."""
    r = run.results
    if not r:
        return Section("Run", html='<p class="muted">No results.json: the run was not tested.</p>')
    epochs = r.get("epochs") or 0
    wall = r.get("fit_wall_s")
    steps = max((int(row["step"]) for row in run.metrics if "step" in row), default=0)
    facts = [
        ["machine", r.get("machine", "")],
        ["date", r.get("date", "")],
        ["epochs", epochs],
        ["fit (wall, training + validation + test)", f"{wall} s" if wall is not None else "?"],
        ["per epoch", f"{wall / epochs:.1f} s" if wall and epochs else "?"],
        ["optimizer steps", steps],
        ["tested checkpoint", Path(r.get("best_checkpoint") or "last checkpoint").name],
        *[[f"best {k}", v] for k, v in (r.get("best_val") or {}).items()],
    ]
    test = sorted((r.get("test") or {}).items())
    return Section("Run", html=table("run", ["", ""], facts) + table("test_metrics", ["test metric", "value"], test))


def render(run: Run, sections: list[Section], images: dict[str, bytes]) -> str:
    title = f"n2m report: {run.folder.resolve().name}"
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="muted">{html.escape(run.shape)} · {html.escape(str(run.folder))}</p>',
    ]
    for section in sections:
        slug = section.title.lower().replace(" ", "-")
        parts.append(f'<section id="section-{slug}"><h2>{html.escape(section.title)}</h2>')
        if section.plots:
            parts.append('<div class="plots">')
            for plot in section.plots:
                data = base64.b64encode(images[plot.name]).decode("ascii")
                parts.append(
                    f'<figure class="plot" id="plot-{plot.name}"><img alt="{html.escape(plot.title)}" '
                    f'src="data:image/png;base64,{data}"><figcaption>{html.escape(plot.title)} '
                    f"({PLOTS_DIR}/{plot.name}.png)</figcaption></figure>"
                )
            parts.append("</div>")
        parts.append(section.html + "</section>")
    parts.append(
        f'<section id="section-recipe"><h2>Recipe</h2><pre id="recipe">{html.escape(run.config_text)}</pre></section>'
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
        f"<body>{''.join(parts)}</body></html>\n"
    )


def write_report(folder: str | Path) -> Path:
    """`<run>/report.html` and `<run>/report/*.png` from the run's logs and test predictions."""
    run = load_run(folder)
    part = report_part(run.shape)
    sections = [run_section(run), curves_section(run), *part.sections(run, read_jsonl(run.folder / part.predictions))]
    out = run.folder / PLOTS_DIR
    out.mkdir(exist_ok=True)
    for stale in out.glob("*.png"):  # a plot a new report does not draw must not linger beside it
        stale.unlink()
    images: dict[str, bytes] = {}
    numbers: dict[str, Any] = {}
    for section in sections:
        for plot in section.plots:
            images[plot.name] = png_bytes(plot.figure)
            (out / f"{plot.name}.png").write_bytes(images[plot.name])
        if section.numbers:
            numbers[section.title] = section.numbers
    (out / "numbers.json").write_text(json.dumps(numbers, indent=1, default=fmt) + "\n", encoding="utf-8")
    path = run.folder / REPORT_HTML
    path.write_text(render(run, sections, images), encoding="utf-8")
    return path
