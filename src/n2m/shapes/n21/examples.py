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

# retrieval: (query, positive passage[, hard negative]) pairs, trained with in-batch negatives, no labels
Objective = Literal["regression", "classification", "multilabel", "retrieval"]


@dataclass
class Columns:
    """Which field of a record holds what. `text_pair` is set for pair tasks (STS, NLI; retrieval: the positive
    passage); `hard_negative`, for retrieval only, a passage that looks relevant to the query but is not."""

    text: str = "text"
    text_pair: str | None = None
    label: str | None = "label"
    id: str | None = None
    hard_negative: str | None = None


@dataclass(frozen=True)
class SequenceExample:
    text: str
    text_pair: str | None = None
    label: float | str | tuple[str, ...] | None = None
    id: str | None = None
    line: int = 0  # where it came from, for error messages
    hard_negative: str | None = None


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
                if with_labels and columns.label and objective != "retrieval"
                else None,
                id=str(record.fields.get(columns.id, "")) if columns.id else None,
                line=record.line,
                hard_negative=_text(record, columns.hard_negative) if columns.hard_negative else None,
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


@dataclass
class Texts:
    """One column of a file: its texts, an id for each (the `id` column's, else the row number from 0), and
    the line each came from."""

    texts: list[str]
    ids: list[str]
    lines: list[int]


def load_texts(
    path: str | Path, column: str = "text", read: ReadOptions | None = None, id_column: str | None = None
) -> Texts:
    """A file's texts of one column (a corpus, queries): an empty file, or a row whose text is missing, empty
    or blank, is a `DataError` naming the file and the line."""
    read = read or ReadOptions()
    records = read_records(path, read.format, header=read.header, column_names=read.column_names)
    found = Texts([], [], [])
    for i, record in enumerate(records):
        found.texts.append(_text(record, column))
        found.ids.append(str(record.get(id_column, "id")) if id_column else str(i))
        found.lines.append(record.line)
    if not found.texts:
        raise DataError("has no rows", path, hint="a header and no rows? check the path and the format")
    return found


def check_known_labels(
    examples: list[SequenceExample],
    label_names: list[str],
    path: str | Path,
    objective: Objective,
    column: str | None,
) -> None:
    """A label never seen in training cannot be learned or scored: say so before training starts."""
    if objective in ("regression", "retrieval"):
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
