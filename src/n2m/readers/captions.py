"""Image-caption readers: (image path, caption) rows from COCO captions JSON, CSV/TSV or JSON Lines.

`read_coco_captions` is the reader of the COCO format (`images` + `annotations`), registered as
`coco_captions`; CSV, TSV and JSONL go through the table readers. `read_caption_rows` reads any of them
into `CaptionRow`s: the image path resolved (relative paths are relative to the file's folder, or to
`image_root`), the caption checked, and every image opened once with Pillow, so a missing, truncated or
non-image file is an error that names the data file, the line and the column before training starts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from n2m.errors import DataError
from n2m.readers.tables import TABLE_READERS, Reader, Record, detect_format, item_start_lines, open_text, visible


@dataclass(frozen=True)
class CaptionRow:
    """One (image, caption) pair and where it was written: `path` and `line` (the row; for COCO the
    annotation), and where the image is named: `image_line` and `column` (for COCO the `images` entry's line
    and `file_name`), for an error about the image found later, when it is decoded."""

    image: Path
    caption: str
    path: str
    line: int
    image_line: int
    column: str


def read_coco_captions(path: str | Path, **_: Any) -> Iterator[Record]:
    """COCO captions JSON: one record per annotation, fields `image` (the image's `file_name`, as written),
    `caption`, `image_id` and `image_line` (where the image entry starts). Lines are the annotations'."""
    path = Path(path)
    text = "".join(open_text(path))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"is not valid JSON: {err.msg} (column {err.colno})", path, err.lineno) from None
    hint = 'COCO captions hold {"images": [{"id", "file_name"}, ...], "annotations": [{"image_id", "caption"}, ...]}'
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations")):
        raise DataError("is not COCO captions JSON: expected `images` and `annotations` lists", path, 1, hint=hint)
    lines = item_start_lines(text)
    images: dict[Any, tuple[str, int]] = {}
    for i, entry in enumerate(data["images"]):
        line = item_line(lines, "images", i)
        if not isinstance(entry, dict):
            raise DataError(f"images[{i}] is {type(entry).__name__}, expected an object", path, line, hint=hint)
        for key in ("id", "file_name"):
            if key not in entry:
                raise DataError(f"images[{i}] has no `{key}`", path, line, key, hint=hint)
        if not isinstance(entry["file_name"], str) or not entry["file_name"].strip():
            raise DataError(f"images[{i}]'s file_name is not a path: {entry['file_name']!r}", path, line, "file_name")
        if entry["id"] in images:
            first = images[entry["id"]][1]
            raise DataError(f"image id {entry['id']!r} is used twice (first at line {first})", path, line, "id")
        images[entry["id"]] = (entry["file_name"], line)
    for i, note in enumerate(data["annotations"]):
        line = item_line(lines, "annotations", i)
        if not isinstance(note, dict):
            raise DataError(f"annotations[{i}] is {type(note).__name__}, expected an object", path, line, hint=hint)
        for key in ("image_id", "caption"):
            if key not in note:
                raise DataError(f"annotations[{i}] has no `{key}`", path, line, key, hint=hint)
        if note["image_id"] not in images:
            raise DataError(
                f"annotations[{i}] names image_id {note['image_id']!r}, which no entry of `images` has",
                path,
                line,
                "image_id",
            )
        file_name, image_line = images[note["image_id"]]
        fields = {
            "image": file_name,
            "caption": note["caption"],
            "image_id": note["image_id"],
            "image_line": image_line,
        }
        yield Record(str(path), line, fields)


def item_line(lines: dict[str | None, list[int]], key: str, index: int) -> int:
    starts = lines.get(key, [])
    return starts[index] if index < len(starts) else 1


def is_coco(path: Path) -> bool:
    """Whether a JSON file's top level holds `images` and `annotations`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False  # the reader that is chosen says what is wrong, with the line
    return isinstance(data, dict) and "images" in data and "annotations" in data


# the first bytes of the formats Pillow reads most: a file that starts like one but does not open is damaged
IMAGE_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")


def image_problem(image: Path) -> str | None:
    """Why Pillow cannot read the image, or None. `verify` checks the file's structure (for PNG, every
    chunk's checksum) without decoding the pixels, so it is cheap enough to run on every image."""
    if not image.is_file():
        return "does not exist" if not image.exists() else "is not a file"
    try:
        with Image.open(image) as opened:
            opened.verify()
    except Image.DecompressionBombError as err:
        return f"has too many pixels ({err})"
    except UnidentifiedImageError:
        with image.open("rb") as f:
            head = f.read(12)
        if head.startswith(IMAGE_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
            return "is truncated or corrupt (it starts like an image but Pillow cannot open it)"
        return "is not an image (a text or HTML file saved with an image suffix?)"
    except (OSError, SyntaxError, ValueError) as err:  # Pillow reports truncated or corrupt files as these
        return f"is truncated or corrupt ({err or type(err).__name__})"
    return None


def read_caption_rows(
    path: str | Path,
    image_column: str = "image",
    caption_column: str = "caption",
    format: str | None = None,
    image_root: str | Path | None = None,
    check_images: bool = True,
    **options: Any,
) -> list[CaptionRow]:
    """Read (image, caption) rows from COCO captions JSON, CSV, TSV, JSONL or a JSON list.

    `format` defaults to what the suffix says; a .json file (or `format="json"`) that holds `images` and
    `annotations` is read as COCO captions. Relative image paths are resolved against `image_root`, by
    default the data file's folder.
    With `check_images`, every distinct image is opened once (Pillow `verify`); the first bad one is an
    error naming the data file, the line and the column. `options` go to the table reader (`column_names`...).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("does not exist or is not a file", path)
    fmt = format or detect_format(path)
    if fmt == "json" and is_coco(path):  # a .json file, said or guessed: COCO's layout is told by its keys
        fmt = "coco_captions"
    if fmt not in CAPTION_FORMATS:
        raise DataError(f"unknown caption format {fmt!r}", path, hint=f"use one of {sorted(CAPTION_FORMATS)}")
    root = Path(image_root) if image_root is not None else path.parent
    coco = fmt == "coco_captions"
    rows: list[CaptionRow] = []
    checked: dict[Path, str | None] = {}
    for record in CAPTION_FORMATS[fmt](path, **options):
        name = record.get("image" if coco else image_column, "image")
        caption = record.get("caption" if coco else caption_column, "caption")
        line, column = (record.fields["image_line"], "file_name") if coco else (record.line, image_column)
        if not isinstance(name, str) or not name.strip():
            raise DataError(f"expected an image path, got {name!r}", path, line, column)
        if not isinstance(caption, str) or not visible(caption):
            raise DataError(
                f"expected a caption text, got {caption!r}",
                path,
                record.line,
                "caption" if coco else caption_column,
                hint="drop the row or write its caption",
            )
        image = Path(name.strip())
        image = image if image.is_absolute() else root / image
        if check_images:
            if image not in checked:
                checked[image] = image_problem(image)
            if checked[image]:
                raise DataError(
                    f"image {name!r} ({image}) {checked[image]}",
                    path,
                    line,
                    column,
                    hint=f"relative image paths are read from {root}; set `image_root` if they live elsewhere",
                )
        rows.append(CaptionRow(image, caption.strip(), str(path), record.line, line, column))
    if not rows:
        raise DataError("holds no (image, caption) rows", path)
    return rows


def references_by_image(rows: list[CaptionRow]) -> dict[Path, list[str]]:
    """Each image's captions, images in the order they first appear: the references an evaluation scores
    one generated caption per image against."""
    grouped: dict[Path, list[str]] = {}
    for row in rows:
        grouped.setdefault(row.image, []).append(row.caption)
    return grouped


CAPTION_READERS: dict[str, Reader] = {"coco_captions": read_coco_captions}
CAPTION_FORMATS: dict[str, Reader] = {**TABLE_READERS, **CAPTION_READERS}
