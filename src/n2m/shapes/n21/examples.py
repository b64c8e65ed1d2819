"""Validated N21 examples: records checked against the task before any training starts."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from n2m.errors import DataError
from n2m.readers import Record, read_records
from n2m.readers.tables import visible

Objective = Literal["regression", "classification", "multilabel"]


@dataclass
class Columns:
    """Which field of a record holds what. `text_pair` is set for pair tasks (STS, NLI)."""

    text: str = "text"
    text_pair: str | None = None
    label: str | None = "label"
    id: str | None = None


@dataclass(frozen=True)
class SequenceExample:
    text: str
    text_pair: str | None = None
    label: float | str | tuple[str, ...] | None = None
    id: str | None = None
    line: int = 0  # where it came from, for error messages


@dataclass
class ReadOptions:
    """How to read the files: `format` defaults to the suffix; headerless files need `column_names`."""

    format: str | None = None
    header: bool = True
    column_names: list[str] | None = None
    label_separator: str = ","


def _text(record: Record, column: str) -> str:
    value = record.get(column)
    if not isinstance(value, str):
        raise DataError(f"expected text, got {type(value).__name__} {value!r}", record.path, record.line, column)
    if not visible(value):
        raise DataError("empty text", record.path, record.line, column, hint="fill the cell, or remove the row")
    return unicodedata.normalize("NFC", value)


def _label(record: Record, column: str, objective: Objective, separator: str) -> float | str | tuple[str, ...]:
    value = record.get(column, "label")
    if objective == "regression":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise DataError(
                f"label {value!r} is not a number (a regression task needs numeric scores)",
                record.path,
                record.line,
                column,
            ) from None
        if not math.isfinite(number):
            raise DataError(f"label {value!r} is not a finite number", record.path, record.line, column)
        return number
    if objective == "multilabel":
        items = value if isinstance(value, list) else str(value).split(separator)
        return tuple(sorted({str(v).strip() for v in items if str(v).strip()}))
    if value is None or str(value).strip() == "":
        raise DataError("empty label", record.path, record.line, column)
    return str(value).strip()


def records_to_examples(
    records: Iterable[Record],
    columns: Columns,
    objective: Objective,
    with_labels: bool = True,
    label_separator: str = ",",
) -> list[SequenceExample]:
    examples = []
    for record in records:
        examples.append(
            SequenceExample(
                text=_text(record, columns.text),
                text_pair=_text(record, columns.text_pair) if columns.text_pair else None,
                label=_label(record, columns.label, objective, label_separator)
                if with_labels and columns.label
                else None,
                id=str(record.fields.get(columns.id, "")) if columns.id else None,
                line=record.line,
            )
        )
    return examples


def load_sequence_examples(
    path: str | Path,
    columns: Columns,
    objective: Objective,
    read: ReadOptions | None = None,
    with_labels: bool = True,
) -> list[SequenceExample]:
    """Read and validate a file; raises `DataError` naming file, line and column on the first bad row."""
    read = read or ReadOptions()
    records = read_records(path, read.format, header=read.header, column_names=read.column_names)
    examples = records_to_examples(records, columns, objective, with_labels, read.label_separator)
    if not examples:
        raise DataError("has no rows", path, hint="a header and no rows? check the path and the format")
    return examples


def check_known_labels(
    examples: list[SequenceExample],
    label_names: list[str],
    path: str | Path,
    objective: Objective,
    column: str | None,
) -> None:
    """A label never seen in training cannot be learned or scored: say so before training starts."""
    if objective == "regression":
        return
    known = set(label_names)
    for ex in examples:
        labels = ex.label if isinstance(ex.label, tuple) else (ex.label,)
        for label in labels:
            if label is not None and label not in known:
                raise DataError(
                    f"label {label!r} never appears in the training data (known: {sorted(known)})",
                    path,
                    ex.line,
                    column,
                    hint="add it to `label_names` or fix the row",
                )
