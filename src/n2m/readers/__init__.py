"""Readers: turn a file into `Record`s (where each came from, and its fields by name).

Every format is named in `READERS`, keyed by the `format` a recipe gives. Table formats yield one record
per row; sentence formats (CoNLL, KLUE-NER, ...) one per sentence; parallel formats one per pair; COCO
captions one per annotation. `captions.read_caption_rows` reads image-caption files into checked
(image path, caption) rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from n2m.errors import DataError
from n2m.readers.captions import CAPTION_READERS, CaptionRow, read_caption_rows, references_by_image
from n2m.readers.parallel import PARALLEL_READERS
from n2m.readers.tables import TABLE_READERS, Reader, Record, detect_format
from n2m.readers.tokens import TOKEN_READERS

READERS: dict[str, Reader] = {**PARALLEL_READERS, **TABLE_READERS, **TOKEN_READERS, **CAPTION_READERS}

__all__ = [
    "READERS",
    "CaptionRow",
    "Reader",
    "Record",
    "detect_format",
    "read_caption_rows",
    "read_records",
    "references_by_image",
]


def read_records(path: str | Path, format: str | None = None, **options: Any):
    """Read any supported file; `format` defaults to what the suffix says."""
    path = Path(path)
    if not path.is_file():
        raise DataError("does not exist or is not a file", path)
    fmt = format or detect_format(path)
    if fmt not in READERS:
        raise DataError(f"unknown format {fmt!r}", path, hint=f"use one of {sorted(READERS)}")
    return READERS[fmt](path, **options)
