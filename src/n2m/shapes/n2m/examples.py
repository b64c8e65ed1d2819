"""N2M examples: (source, target) pairs read from one or several files, validated, each knowing its file and line.

Sources given as lists (SciTLDR's abstract sentences) are joined; targets given as lists (several TL;DRs)
train on the first and score against all of them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from n2m.errors import DataError
from n2m.readers import READERS, Record, read_records
from n2m.readers.tables import visible


@dataclass
class Seq2SeqColumns:
    """Which field of a record is the source, which the target (absent when predicting), which the id."""

    source: str = "source"
    target: str | None = "target"
    id: str | None = None


@dataclass
class DataFile:
    """One input file and how to read it. A plain string path is read with the defaults.

    `format` defaults to the suffix, or `parallel` for a brace pattern such as `news.dev.{ko,en}`;
    `header` and `column_names` are for headerless CSV/TSV and `tab_pairs`.
    """

    path: str
    format: str | None = None
    header: bool = True
    column_names: list[str] | None = None


# Not `DataFile` in the type: jsonargparse would then read any string value as a path to a config file and
# replace a CSV path by the file's content; mappings are checked by `as_data_files` instead.
Files = str | list[str | dict[str, Any]] | None


@dataclass(frozen=True)
class Seq2SeqExample:
    source: str
    target: str | None  # what the decoder is trained on
    references: tuple[str, ...]  # what outputs are scored against (several for SciTLDR)
    id: str | None
    file: str  # where it came from: the split file and error messages name rows by (file, line)
    line: int


def as_data_files(files: Files | DataFile) -> list[DataFile]:
    if files is None:
        return []
    if isinstance(files, str | DataFile | dict):
        files = [files]  # type: ignore[list-item]
    out = []
    for f in files:  # type: ignore[union-attr]
        if isinstance(f, DataFile):
            out.append(f)
        elif isinstance(f, dict):
            unknown = sorted(set(f) - set(DataFile.__dataclass_fields__))
            if unknown or "path" not in f:
                raise DataError(
                    f"a data file entry {f} has unknown keys {unknown}"
                    if unknown
                    else f"a data file entry {f} has no path",
                    hint="each entry is a path, or {path, format, header, column_names}",
                )
            out.append(DataFile(**f))
        else:
            out.append(DataFile(str(f)))
    return out


def read_data_file(file: DataFile) -> Iterator[Record]:
    if file.format == "parallel" or (not file.format and "{" in file.path):
        return READERS["parallel"](file.path)  # a pattern, not one file: the reader checks each side exists
    return read_records(file.path, file.format, header=file.header, column_names=file.column_names)


def _text(record: Record, column: str, join: str, what: str) -> tuple[str, ...]:
    """The texts in a field: one string, or a list of strings (kept apart; the caller joins or chooses)."""
    value = record.get(column, what)
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) for v in items):
        raise DataError(f"expected text or a list of texts, got {value!r:.80}", record.path, record.line, column)
    texts = tuple(unicodedata.normalize("NFC", v).strip() for v in items)
    if not any(visible(t) for t in texts):
        raise DataError(f"empty {what}", record.path, record.line, column, hint="fill the cell, or remove the row")
    return tuple(t for t in texts if t)


def load_seq2seq_examples(
    file: DataFile, columns: Seq2SeqColumns, with_targets: bool = True, join: str = " "
) -> list[Seq2SeqExample]:
    """Read and validate one file; a bad row raises `DataError` naming file, line and column."""
    examples = []
    for record in read_data_file(file):
        source = join.join(_text(record, columns.source, join, "source"))
        references: tuple[str, ...] = ()
        if with_targets and columns.target:
            references = _text(record, columns.target, join, "target")
        examples.append(
            Seq2SeqExample(
                source=source,
                target=references[0] if references else None,
                references=references,
                id=str(record.fields.get(columns.id, "")) if columns.id else None,
                file=file.path,
                line=record.line,
            )
        )
    if not examples:
        raise DataError("has no rows", file.path, hint="a header and no rows? check the path and the format")
    return examples
