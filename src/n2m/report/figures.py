"""What a report's sections are made of: plots (matplotlib figures, saved as PNG), HTML tables, and the numbers
behind them (written to `report/numbers.json`, so tests and scripts read what the pictures show)."""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from n2m.report.run import Run


@dataclass
class Plot:
    name: str  # its file is report/<name>.png
    title: str
    figure: Figure


@dataclass
class Section:
    title: str
    plots: list[Plot] = field(default_factory=list)
    html: str = ""  # tables and text, shown under the plots
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportPart:
    """A shape's part of the report (named in `n2m.registry`): the file of test predictions its task writes, in
    the run folder, and the sections it draws from them."""

    predictions: str
    sections: Callable[[Run, list[dict[str, Any]]], list[Section]]


def new_figure(width: float = 6.4, height: float = 4.2) -> Figure:
    """A figure without pyplot: no global state, no display needed (the Agg canvas draws it)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def png_bytes(figure: Figure) -> bytes:
    import io

    buffer = io.BytesIO()
    with warnings.catch_warnings():  # a label in a script DejaVu lacks (Hangul) is drawn as boxes, not a warning
        warnings.simplefilter("ignore", UserWarning)
        figure.savefig(buffer, format="png")
    return buffer.getvalue()


def fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(name: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], raw: bool = False) -> str:
    """An HTML table with id `table-<name>`; cells are escaped unless `raw` (cells already HTML)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell if raw else html.escape(fmt(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f'<table class="table" id="table-{name}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def heading(text: str) -> str:
    return f"<h3>{html.escape(text)}</h3>"
