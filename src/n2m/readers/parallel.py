"""Parallel-text readers: one record per aligned pair (translation, dialogue).

`parallel` reads line-aligned files named by one brace pattern, `tab_pairs` reads headerless
tab-separated pairs (Tatoeba / manythings.org style). CSV (`Q,A`) and JSONL with list fields
(SciTLDR: a list of source sentences, a list of TL;DRs) go through the table readers: joining a
list of sentences and choosing among references is the seq2seq data's job, not the file format's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from n2m.errors import DataError
from n2m.readers.tables import Reader, Record, open_text, read_delimited

_BRACES = re.compile(r"^(?P<head>[^{}]*)\{(?P<alts>[^{}]+)\}(?P<tail>[^{}]*)$")


def parallel_files(pattern: str | Path) -> dict[str, Path]:
    """`news.dev.{ko,en}` → {"ko": news.dev.ko, "en": news.dev.en}: one file per side, named by the alternative."""
    match = _BRACES.match(str(pattern))
    if not match:
        raise DataError(
            "is not a parallel-file pattern",
            pattern,
            hint="name line-aligned files with one brace group, e.g. data/news.dev.{ko,en}",
        )
    names = [a.strip() for a in match["alts"].split(",")]
    if len(names) < 2 or len(set(names)) != len(names) or not all(names):
        raise DataError("needs two or more different names inside the braces, e.g. {ko,en}", pattern)
    return {name: Path(f"{match['head']}{name}{match['tail']}") for name in names}


def read_parallel(path: str | Path, **_: Any) -> Iterator[Record]:
    """Line-aligned files: line i of every file is one pair. Fields are named by the brace alternatives.

    A line that is blank in every file is skipped (trailing blank lines are common); a line blank in
    some files but not in others means the files have drifted apart, and is an error naming the line.
    """
    files = parallel_files(path)
    lines: dict[str, list[str]] = {}
    for name, file in files.items():
        if not file.is_file():
            raise DataError(f"does not exist (side {name!r} of {path})", file)
        lines[name] = [line.rstrip("\r\n") for line in open_text(file)]
    counts = {name: len(v) for name, v in lines.items()}
    if len(set(counts.values())) > 1:
        detail = ", ".join(f"{files[n].name}: {c}" for n, c in counts.items())
        raise DataError(
            f"line-aligned files have different line counts ({detail})",
            path,
            hint="each line of one file must translate the same line of the other",
        )
    for i, row in enumerate(zip(*lines.values(), strict=True)):
        blank = [not cell.strip() for cell in row]
        if all(blank):
            continue
        if any(blank):
            empty = next(n for n, b in zip(lines, blank, strict=True) if b)
            raise DataError(
                "is empty but the other side of the pair is not: the files are misaligned here",
                files[empty],
                i + 1,
                empty,
            )
        yield Record(str(path), i + 1, dict(zip(lines, row, strict=True)))


def read_tab_pairs(path: str | Path, column_names: list[str] | None = None, **_: Any) -> Iterator[Record]:
    """Headerless `source<TAB>target[<TAB>anything]` lines; `column_names` names the columns (default
    source, target). Extra columns, such as Tatoeba's attribution, are kept under their names or ignored."""
    names = list(column_names) if column_names else ["source", "target"]
    return read_delimited(path, delimiter="\t", header=False, column_names=names, quoting=False)


PARALLEL_READERS: dict[str, Reader] = {
    "parallel": read_parallel,
    "tab_pairs": read_tab_pairs,
}
