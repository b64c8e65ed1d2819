"""N2N examples: a sentence's text, its units (words or characters) and their tags, read from a file.

No Lightning here: the Predictor builds examples from raw texts (`split_units`) as the DataModule does.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from n2m.errors import DataError
from n2m.readers import Record, read_records

Unit = Literal["word", "char"]


@dataclass(frozen=True)
class TokenExample:
    """One sentence: its text, its units as `[start, end)` character offsets, and their tags (None to predict)."""

    text: str
    units: tuple[tuple[int, int], ...]
    tags: tuple[str, ...] | None = None
    id: str | None = None
    line: int = 0
    tag_lines: tuple[int, ...] = ()  # the file line of each unit, for error messages
    path: str = ""


def split_units(text: str, unit: Unit) -> list[tuple[int, int]]:
    """Units of a raw text: every character, or every run of non-space characters (a word)."""
    if unit == "char":
        return [(i, i + 1) for i in range(len(text))]
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def nfc_kept(text: str) -> str:
    """NFC-normalized text, or the text itself when normalizing would change its length (offsets must hold)."""
    normalized = unicodedata.normalize("NFC", text)
    return normalized if len(normalized) == len(text) else text


def records_to_token_examples(records: Sequence[Record], with_tags: bool, unit: Unit) -> list[TokenExample]:
    examples = []
    for record in records:
        fields = record.fields
        if "offsets" in fields:  # a sentence format: units and tags as the file gives them
            text, units = nfc_kept(fields["text"]), tuple(tuple(o) for o in fields["offsets"])
            tags = tuple(fields["tags"]) if with_tags else None
            lines = tuple(fields.get("token_lines") or ())
        else:  # a table of raw texts to predict
            if "text" not in fields:
                raise DataError(f"missing column 'text'; the row has {sorted(fields)}", record.path, record.line)
            text = nfc_kept(str(fields["text"]))
            units, tags, lines = tuple(split_units(text, unit)), None, ()
            if with_tags:
                raise DataError("a table has no tags to train on: use a sentence format", record.path, record.line)
        if not units:
            raise DataError("empty sentence", record.path, record.line)
        id_ = fields.get("id")
        id_ = str(id_) if id_ is not None else None
        examples.append(TokenExample(text, units, tags, id_, record.line, lines, record.path))
    return examples


def load_token_examples(
    path: str | Path, format: str | None, with_tags: bool = True, unit: Unit = "word", **options: Any
) -> list[TokenExample]:
    records = list(read_records(path, format, **options))
    if not records:
        raise DataError("has no sentences", path, hint="check the path and the `format` the recipe gives")
    return records_to_token_examples(records, with_tags, unit)
