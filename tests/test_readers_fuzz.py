"""Generated tables (random Unicode, quotes, delimiters, BOMs, line ends) read back exactly; random bytes either
read or fail with the project's error naming the file and a line, never with anything else."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from n2m.errors import DataError
from n2m.readers import read_records

# any character a text may hold: no NUL (refused on purpose), no lone surrogates (not encodable as UTF-8)
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
ROW = st.lists(TEXT, min_size=3, max_size=3).filter(lambda row: any(cell.strip() for cell in row))
NAMES = ["a", "b", "c"]


FOLDER = Path(tempfile.mkdtemp(prefix="n2m-fuzz-"))  # hypothesis calls a test many times: one file, rewritten


def write(data: bytes, suffix: str) -> Path:
    path = FOLDER / f"table{suffix}"
    path.write_bytes(data)
    return path


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(ROW, min_size=1, max_size=6),
    dialect=st.sampled_from([("\r\n", csv.QUOTE_MINIMAL), ("\r\n", csv.QUOTE_ALL), ("\n", csv.QUOTE_ALL)]),
    bom=st.booleans(),
)
def test_csv_written_by_the_csv_module_reads_back_exactly(rows, dialect, bom):
    # (with "\n" line ends, QUOTE_MINIMAL leaves a "\r" in a cell unquoted: no reader can tell it from a line end)
    ending, quoting = dialect
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=ending, quoting=quoting)
    writer.writerows([NAMES, *rows])
    path = write(("\ufeff" if bom else "").encode() + out.getvalue().encode("utf-8"), ".csv")
    assert [[r.fields[n] for n in NAMES] for r in read_records(path)] == rows


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(ROW, min_size=1, max_size=6), ending=st.sampled_from(["\n", "\r\n", "\r"]))
def test_tsv_reads_quotes_as_text_and_cells_exactly(rows, ending):
    rows = [[cell.replace("\t", " ").replace("\r", " ").replace("\n", " ") for cell in row] for row in rows]
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    text = ending.join("\t".join(row) for row in [NAMES, *rows]) + ending
    path = write(text.encode("utf-8"), ".tsv")
    got = [(r.line, [r.fields[n] for n in NAMES]) for r in read_records(path)]
    assert [cells for _, cells in got] == rows
    assert [line for line, _ in got] == list(range(2, len(rows) + 2))  # one row per line, whatever it holds


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200), suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".json"]))
def test_random_bytes_read_or_fail_with_file_and_line(data, suffix):
    path = write(data, suffix)
    try:
        for record in read_records(path):
            assert record.line >= 1 and isinstance(record.fields, dict)
    except DataError as err:
        assert str(path) in str(err)
