"""Sentence readers for the N2N shape: one `Record` per sentence, a label per word or per character.

Every reader yields the same fields, so the rest of n2m never looks at the file format again:
`id`, `text` (the sentence as one string), `tokens` (the labelled units: words, or characters for KLUE-NER),
`offsets` (each unit's `[start, end)` in `text`), `tags` (one per unit), `token_lines` (the file line of each
unit, for error messages) and `unit` ("word" or "char"). A record's `line` is the sentence's first line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from n2m.errors import DataError
from n2m.readers.tables import Reader, Record, open_text


def _joined(tokens: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Words joined by single spaces, and where each one is."""
    offsets, position = [], 0
    for token in tokens:
        offsets.append((position, position + len(token)))
        position += len(token) + 1
    return " ".join(tokens), offsets


def _record(path: Path, first_line: int, id_: str, text: str, offsets, tokens, tags, lines, unit: str) -> Record:
    fields = {
        "id": id_,
        "text": text,
        "tokens": tokens,
        "offsets": offsets,
        "tags": tags,
        "token_lines": lines,
        "unit": unit,
    }
    return Record(str(path), first_line, fields)


def read_conll(path: str | Path, token_column: int = 0, tag_column: int = -1, **_: Any) -> Iterator[Record]:
    """CoNLL columns (WNUT-17, CoNLL-2003): a word and its tag per line, tab- or space-separated, a blank line
    between sentences; `-DOCSTART-` lines are skipped. The text is the words joined by single spaces."""
    path = Path(path)

    def parse(line: str, number: int) -> tuple[str, str] | None:
        if not line.strip():
            return None
        cells = line.split("\t") if "\t" in line else line.split()
        if cells[0].startswith("-DOCSTART-"):  # a document break is a sentence break too
            return None
        if len(cells) < 2:
            raise DataError(
                f"expected a word and a tag separated by a tab, got {line!r}",
                path,
                number,
                hint="CoNLL files have one `word<TAB>tag` per line and a blank line between sentences",
            )
        try:
            token, tag = cells[token_column].strip(), cells[tag_column].strip()
        except IndexError:
            raise DataError(f"has {len(cells)} columns; column {tag_column} does not exist", path, number) from None
        if not token or not tag:
            raise DataError(f"empty {'word' if not token else 'tag'} in {line!r}", path, number)
        return token, tag

    return _sentences(path, "word", parse, headers=False)


def _sentences(
    path: Path, unit: str, parse: Callable[[str, int], tuple[str, str] | None], headers: bool = True
) -> Iterator[Record]:
    """One unit per line (`parse` gives its text and tag, or None at a sentence break, e.g. a blank line); with
    `headers` (KLUE), a `## <id>\t<text>` line before each sentence names it and other `##` lines are comments."""
    pieces: list[str] = []
    tags: list[str] = []
    lines: list[int] = []
    header: tuple[int, str] | None = None
    count = 0

    def flush() -> Iterator[Record]:
        nonlocal header, count
        if pieces:
            first, id_ = header if header else (lines[0], str(count))
            if unit == "char":
                text, offsets = "".join(pieces), [(i, i + 1) for i in range(len(pieces))]
            else:
                text, offsets = _joined(pieces)
            yield _record(path, first, id_, text, offsets, list(pieces), list(tags), list(lines), unit)
            count += 1
        pieces.clear()
        tags.clear()
        lines.clear()
        header = None

    for number, raw in enumerate(open_text(path), start=1):
        line = raw.rstrip("\r\n")
        if headers and line.startswith("##"):
            if "\t" in line:  # `## klue-ner-v1_dev_00000-wikitree\t<경찰:OG>은 ...`
                yield from flush()
                header = (number, line[2:].split("\t", 1)[0].strip())
            continue
        parsed = parse(line, number)
        if parsed is None:
            yield from flush()
            continue
        pieces.append(parsed[0])
        tags.append(parsed[1])
        lines.append(number)
    yield from flush()


def read_klue_ner(path: str | Path, **_: Any) -> Iterator[Record]:
    """KLUE-NER: one character and its BIO tag per line (a space is a line too)."""
    path = Path(path)

    def parse(line: str, number: int) -> tuple[str, str] | None:
        if line == "":
            return None
        char, sep, tag = line.rpartition("\t")
        if not sep:
            raise DataError(f"expected a character and a tag separated by a tab, got {line!r}", path, number)
        if len(char) != 1:
            raise DataError(
                f"expected one character before the tab, got {char!r} ({len(char)} characters)",
                path,
                number,
                hint="KLUE-NER files have one character per line",
            )
        if not tag.strip():
            raise DataError(f"empty tag for character {char!r}", path, number)
        return char, tag.strip()

    return _sentences(path, "char", parse)


def read_conllu(path: str | Path, tag_column: Literal["upos", "xpos"] = "upos", **_: Any) -> Iterator[Record]:
    """CoNLL-U (Universal Dependencies): one record per sentence, a tag per syntactic word (UPOS or XPOS).

    Offsets come from the `# text =` line (each word found in order, only whitespace skipped between words);
    without one, the words are joined with a space unless `SpaceAfter=No`. Multiword-token ranges and empty
    nodes are skipped.
    """
    path = Path(path)
    column = {"upos": 3, "xpos": 4}[tag_column]
    block: list[tuple[int, str]] = []
    count = 0

    def flush() -> Iterator[Record]:
        nonlocal count
        if block:
            yield _conllu_sentence(path, block, column, count)
            count += 1
        block.clear()

    for number, raw in enumerate(open_text(path), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            yield from flush()
        else:
            block.append((number, line))
    yield from flush()


def _conllu_sentence(path: Path, block: list[tuple[int, str]], column: int, count: int) -> Record:
    comments = {}
    words: list[tuple[int, list[str]]] = []
    for number, line in block:
        if line.startswith("#"):
            key, sep, value = line[1:].partition("=")
            if sep:
                comments[key.strip()] = value.strip()
            continue
        cells = line.split("\t")
        if len(cells) != 10:
            raise DataError(f"has {len(cells)} tab-separated columns, CoNLL-U needs 10", path, number)
        if "-" in cells[0] or "." in cells[0]:
            continue
        words.append((number, cells))
    first = block[0][0]
    if not words:
        raise DataError("sentence has no words", path, first)
    forms = [cells[1] for _, cells in words]
    if "text" in comments:
        text, offsets, position = comments["text"], [], 0
        for (number, _cells), form in zip(words, forms, strict=True):
            start = text.find(form, position)
            if start < 0 or text[position:start].strip():
                raise DataError(f"word {form!r} is not where `# text` says the sentence continues", path, number)
            offsets.append((start, start + len(form)))
            position = start + len(form)
    else:
        pieces, offsets, position = [], [], 0
        for _, cells in words:
            offsets.append((position, position + len(cells[1])))
            gap = "" if "SpaceAfter=No" in cells[9] else " "
            pieces.append(cells[1] + gap)
            position += len(cells[1]) + len(gap)
        text = "".join(pieces).rstrip()
    tags = []
    for number, cells in words:
        if cells[column] in ("", "_"):
            raise DataError(f"word {cells[1]!r} has no tag in column {column + 1}", path, number)
        tags.append(cells[column])
    lines = [number for number, _ in words]
    return _record(path, first, comments.get("sent_id", str(count)), text, offsets, forms, tags, lines, "word")


def read_klue_dp(path: str | Path, **_: Any) -> Iterator[Record]:
    """KLUE-DP: `INDEX WORD_FORM LEMMA POS HEAD DEPREL` per word (eojeol). The tag is the word's POS sequence as
    written (`NNP+JKS`); the text is the words joined by single spaces (the header's text differs from its
    words in a few sentences, e.g. `15.7%` vs `15.70%`)."""
    path = Path(path)

    def parse(line: str, number: int) -> tuple[str, str] | None:
        if not line.strip():
            return None
        cells = line.split("\t")
        if len(cells) < 4:
            raise DataError(
                f"has {len(cells)} columns, expected INDEX WORD_FORM LEMMA POS HEAD DEPREL", path, number, "POS"
            )
        word, pos = cells[1].strip(), cells[3].strip()
        if not word or not pos:
            raise DataError(f"empty {'WORD_FORM' if not word else 'POS'}", path, number)
        return word, pos

    return _sentences(path, "word", parse)


TOKEN_READERS: dict[str, Reader] = {
    "conll": read_conll,
    "klue-ner": read_klue_ner,
    "conllu": read_conllu,
    "klue-dp": read_klue_dp,
}
