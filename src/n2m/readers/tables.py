"""Table readers (CSV, TSV, JSONL, JSON lists): one record per row.

A reader only knows the file format. Validation against a task (which columns, which label type)
happens in each shape's `examples` module, so every format gets the same checks and messages.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from n2m.errors import DataError

csv.field_size_limit(sys.maxsize)


@dataclass(frozen=True)
class Record:
    """One row of a file: where it was, and its fields by name."""

    path: str
    line: int
    fields: dict[str, Any]
    header_line: int | None = None  # where a table names its columns: a missing column is missing there

    def __post_init__(self) -> None:
        for column, value in self.fields.items():
            texts = value if isinstance(value, list) else [value]
            if any(isinstance(t, str) and "\x00" in t for t in texts):
                raise DataError(
                    "contains a NUL character (U+0000)",
                    self.path,
                    self.line,
                    column,
                    hint="remove it; NULs throughout a file usually mean it is UTF-16 or binary, not UTF-8 text",
                )

    def get(self, column: str, what: str = "") -> Any:
        """The field's value; a missing column is an error that names file, line and column."""
        if column not in self.fields:
            where = "the header has" if self.header_line else "the row has"
            raise DataError(
                f"missing {what + ' ' if what else ''}column '{column}'; {where} {sorted(self.fields)}",
                self.path,
                self.header_line or self.line,
                column,
                hint="fix the `columns` mapping in the recipe",
            )
        return self.fields[column]


Reader = Callable[..., Iterator[Record]]


INVISIBLE = {"Zs", "Zl", "Zp", "Cc", "Cf", "Co", "Cs", "Cn", "Mn", "Mc", "Me"}


def visible(text: str) -> bool:
    """Whether a text shows anything: not only spaces, zero-width or format characters (U+200B, a BOM),
    private-use characters or combining marks with nothing to combine with."""
    return any(unicodedata.category(char) not in INVISIBLE for char in text)


LINE_END = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def open_text(path: Path) -> list[str]:
    """Read the whole file as UTF-8, naming the line of the first undecodable byte."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            f"is not valid UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start})",
            path,
            line,
            hint="re-save the file as UTF-8, e.g. `iconv -f cp949 -t utf-8 in.tsv > out.tsv` for Korean Windows files",
        ) from None
    # lines end at \n, \r\n or \r only (not at U+2028, \x85, \x0c, … as `str.splitlines` has it: those are
    # text inside a field); ends are kept, so a quoted CSV cell may hold a newline
    return LINE_END.findall(text)


def read_delimited(
    path: str | Path,
    delimiter: str = ",",
    header: bool = True,
    column_names: list[str] | None = None,
    quoting: bool = True,
) -> Iterator[Record]:
    """CSV/TSV. `quoting=False` reads quote characters as text (KorSTS has `"` inside sentences).

    Without a header, `column_names` names the columns; extra trailing cells are ignored
    (STS-B has two optional source columns on some rows).
    """
    path = Path(path)
    lines = open_text(path)
    reader = csv.reader(lines, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE)
    names = list(column_names) if column_names else None
    if header:
        try:
            head = next(reader)
        except StopIteration:
            raise DataError("is empty: expected a header row", path, 1) from None
        names = [h.strip() for h in head]
    if not names:
        raise DataError("has no header: pass `column_names` to name the columns", path)
    start = reader.line_num + 1
    for row in reader:
        line, start = start, reader.line_num + 1  # a quoted cell may span lines: report where the row starts
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < len(names):
            missing = names[len(row)]
            raise DataError(
                f"has {len(row)} cells, expected {len(names)} ({', '.join(names)})",
                path,
                line,
                missing,
                hint=f"check the delimiter ({delimiter!r}) and quoting",
            )
        yield Record(str(path), line, dict(zip(names, row, strict=False)), 1 if header else None)


def read_tsv(path: str | Path, **kwargs: Any) -> Iterator[Record]:
    kwargs.setdefault("quoting", False)
    return read_delimited(path, delimiter="\t", **kwargs)


def read_csv(path: str | Path, **kwargs: Any) -> Iterator[Record]:
    return read_delimited(path, delimiter=",", **kwargs)


def read_jsonl(path: str | Path, **_: Any) -> Iterator[Record]:
    path = Path(path)
    for line_no, line in enumerate(open_text(path), start=1):
        if not line.strip():
            continue
        text = line.rstrip("\r\n")
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            cut = (
                " (the line ends too early: cut off, or a line break inside a string?)" if err.pos >= len(text) else ""
            )
            raise DataError(
                f"is not valid JSON: {err.msg} at character {err.pos + 1}{cut}",
                path,
                line_no,
                hint="JSON Lines hold one complete JSON object per line; a newline inside a text must be written \\n",
            ) from None
        if not isinstance(obj, dict):
            raise DataError(f"expected a JSON object per line, got {type(obj).__name__}", path, line_no)
        yield Record(str(path), line_no, obj)


def read_json(path: str | Path, **_: Any) -> Iterator[Record]:
    """A JSON list of objects (KLUE style). Line numbers are those where each object starts."""
    path = Path(path)
    text = "".join(open_text(path))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"is not valid JSON: {err.msg} (column {err.colno})", path, err.lineno) from None
    key = None
    if isinstance(data, dict):  # {"data": [...]} wrappers are common
        keys = [k for k, v in data.items() if isinstance(v, list)]
        if len(keys) != 1:
            raise DataError("expected a JSON list of objects (or an object holding exactly one list)", path, 1)
        key, data = keys[0], data[keys[0]]
    if not isinstance(data, list):
        raise DataError(f"expected a JSON list of objects, got {type(data).__name__}", path, 1)
    starts = item_start_lines(text).get(key, [])
    for i, obj in enumerate(data):
        line = starts[i] if i < len(starts) else None
        if not isinstance(obj, dict):
            raise DataError(f"item {i} is {type(obj).__name__}, expected an object", path, line)
        yield Record(str(path), line or i + 1, obj)


def item_start_lines(text: str) -> dict[str | None, list[int]]:
    """Where each item of a JSON document's lists starts, by line: a top-level list's under None, and each list a
    top-level key holds under that key (a cheap scan that respects strings, for errors that name a line)."""
    found: dict[str | None, list[int]] = {}
    level, line, in_str, escape = 0, 1, False, False
    chars: list[str] = []
    last = ""  # the last string read: the key of a list that opens at the top level
    items: list[int] | None = None  # the open list's item lines
    items_level, want = -1, False  # the open list's items' level; whether the next value starts an item
    for ch in text:
        if ch == "\n":
            line += 1
        if in_str:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_str, last = False, "".join(chars)
            else:
                chars.append(ch)
            continue
        if want and items is not None and not ch.isspace() and ch not in ",]":
            items.append(line)
            want = False
        if ch == '"':
            in_str, chars = True, []
        elif ch in "[{":
            if ch == "[" and items is None and level <= 1:
                items = found.setdefault(None if level == 0 else last, [])
                items_level, want = level + 1, True
            level += 1
        elif ch in "]}":
            level -= 1
            if level < items_level:
                items, items_level, want = None, -1, False
        elif ch == "," and level == items_level:
            want = True
    return found


TABLE_READERS: dict[str, Reader] = {
    "csv": read_csv,
    "tsv": read_tsv,
    "jsonl": read_jsonl,
    "json": read_json,
}

_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}


def detect_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise DataError(
            f"cannot tell the format from the suffix {suffix!r}",
            path,
            hint="set `format` in the recipe's `data.read` section",
        )
    return _SUFFIXES[suffix]
