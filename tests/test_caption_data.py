"""The bundled captioning data (data/ko-caption) and the image-caption readers.

The committed splits share no image, test_novel holds only held-out combinations that train never has, every
reference names exactly its scene's objects and counts; the readers name file, line and column for a missing,
truncated or non-image file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image

from n2m.errors import DataError
from n2m.readers import READERS, read_caption_rows, read_records, references_by_image
from n2m.readers.tables import item_start_lines
from n2m.shapes.n2m.caption_scores import CaptionVocabulary, object_count_scores, read_scene_objects

DATA = Path(__file__).resolve().parents[1] / "data" / "ko-caption"
SPLITS = ("train", "val", "test", "test_novel")


def scenes(split: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / f"{split}.scenes.jsonl").read_text(encoding="utf-8").splitlines()]


def combinations(scene: dict) -> set[tuple]:
    """What the generator holds out, per group: (kind, attribute, value)."""
    found = set()
    for group in scene["objects"]:
        found |= {(group["kind"], a, group[a]) for a in ("size", "count", "column")}
        if group["colour"]:
            found.add((group["kind"], "colour", group["colour"]))
    return found


def test_splits_share_no_image_and_match_the_manifest() -> None:
    manifest = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
    seen_paths: dict[str, str] = {}
    seen_bytes: dict[str, str] = {}
    for split in SPLITS:
        rows = read_caption_rows(DATA / f"{split}.jsonl", check_images=False)
        refs = references_by_image(rows)
        truth = read_scene_objects(DATA / f"{split}.scenes.jsonl")
        assert set(refs) == set(truth)
        assert len(refs) == manifest["splits"][split]["images"] and len(rows) == manifest["splits"][split]["captions"]
        assert all(3 <= len(captions) <= 5 and len(set(captions)) == len(captions) for captions in refs.values())
        on_disk = sorted((DATA / "images" / split).glob("*.png"))
        assert {p.resolve() for p in on_disk} == {p.resolve() for p in refs}
        for image in on_disk:
            digest = hashlib.sha256(image.read_bytes()).hexdigest()
            assert seen_bytes.setdefault(digest, split) == split, f"{image} is also in {seen_bytes[digest]}"
            assert seen_paths.setdefault(image.name + split, split) == split
        assert all(p.parent.name == split for p in refs)
    images = sorted(DATA.glob("images/*/*.png"))  # the committed bytes are the generator's (no LFS, no filters)
    digest = hashlib.sha256(b"".join(str(p.relative_to(DATA)).encode() + p.read_bytes() for p in images))
    assert digest.hexdigest() == manifest["images_sha256"]


def test_novel_combinations_never_occur_in_train() -> None:
    manifest = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
    held = {tuple(c) for c in manifest["held_out"]}
    seen_in_training = set().union(*(combinations(s) for s in scenes("train")))
    for split in ("train", "val", "test"):
        assert not any(combinations(s) & held for s in scenes(split)), split
    novel = scenes("test_novel")
    assert all(combinations(s) & held for s in novel)
    assert all({tuple(c) for c in s["held_out"]} == combinations(s) & held for s in novel)
    assert not seen_in_training & set().union(*(combinations(s) for s in novel)) & held
    assert held <= set().union(*(combinations(s) for s in novel))  # every held-out combination is tested
    # each held-out value is known from other kinds: test_novel asks for composition, not new words
    for kind, attribute, value in held:
        assert any(a == attribute and v == value and k != kind for k, a, v in seen_in_training)


def test_every_reference_names_its_scene_objects_and_counts() -> None:
    vocabulary = CaptionVocabulary.load(DATA / "vocabulary.json")
    for split in SPLITS:
        truth = read_scene_objects(DATA / f"{split}.scenes.jsonl")
        for column in ("caption", "caption_en"):
            rows = read_caption_rows(DATA / f"{split}.jsonl", caption_column=column, check_images=False)
            scores = object_count_scores([r.caption for r in rows], [truth[r.image] for r in rows], vocabulary)
            assert scores.exact == 1.0 and scores.n == len(rows), (split, column)


def test_coco_and_jsonl_versions_of_val_agree() -> None:
    coco = read_caption_rows(DATA / "val.coco.json")  # checks every image too
    lines = read_caption_rows(DATA / "val.jsonl", check_images=False)
    assert [(r.image, r.caption) for r in coco] == [(r.image, r.caption) for r in lines]
    assert read_caption_rows(DATA / "val.coco.json", format="json", check_images=False) == coco
    first = coco[0]
    text = (DATA / "val.coco.json").read_text(encoding="utf-8").splitlines()
    entry = "".join(text[first.image_line - 1 : first.image_line + 4])  # lines name where an object's "{" is
    assert first.column == "file_name" and text[first.image_line - 1].strip() == "{"
    assert '"file_name": "images/val/00000.png"' in entry
    assert '"caption"' in "".join(text[first.line - 1 : first.line + 4])
    assert "coco_captions" in READERS
    record = next(iter(read_records(DATA / "val.coco.json", format="coco_captions")))
    assert record.fields["image"] == "images/val/00000.png" and record.fields["image_id"] == 1


# ---------------------------------------------------------------- readers on hand-made files


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "img").mkdir()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(tmp_path / "img" / "a.png")
    Image.new("RGB", (8, 8), (10, 10, 200)).save(tmp_path / "img" / "b.png")
    return tmp_path


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_paths_are_relative_to_the_file_or_image_root(folder: Path) -> None:
    path = jsonl(folder / "rows.jsonl", [{"image": "img/a.png", "caption": "빨간 그림"}])
    (row,) = read_caption_rows(path)
    assert row.image == folder / "img" / "a.png" and row.caption == "빨간 그림" and row.line == 1
    nested = folder / "sub"
    nested.mkdir()
    csv_path = nested / "rows.csv"
    csv_path.write_text("file,text\nb.png,파란 그림\na.png,빨간 그림\n", encoding="utf-8")
    rows = read_caption_rows(csv_path, image_column="file", caption_column="text", image_root=folder / "img")
    assert [(r.image.name, r.line, r.column) for r in rows] == [("b.png", 2, "file"), ("a.png", 3, "file")]


def test_missing_image_names_file_line_and_column(folder: Path) -> None:
    path = jsonl(
        folder / "rows.jsonl", [{"image": "img/a.png", "caption": "가"}, {"image": "img/x.png", "caption": "나"}]
    )
    with pytest.raises(DataError, match=r"rows\.jsonl, line 2, column 'image': image 'img/x\.png' .* does not exist"):
        read_caption_rows(path)
    assert len(read_caption_rows(path, check_images=False)) == 2


def test_text_file_named_png_and_truncated_png(folder: Path) -> None:
    (folder / "img" / "text.png").write_text("<html>not an image</html>", encoding="utf-8")
    noise = Image.effect_noise((64, 64), 60).convert("RGB")  # big enough to cut inside its pixel data
    noise.save(folder / "img" / "noise.png")
    whole = (folder / "img" / "noise.png").read_bytes()
    (folder / "img" / "cut.png").write_bytes(whole[: len(whole) // 2])
    (folder / "img" / "head.png").write_bytes(whole[:20])
    path = folder / "rows.csv"
    path.write_text("image,caption\nimg/a.png,가\nimg/text.png,나\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"rows\.csv, line 3, column 'image': .*text\.png.* is not an image \("):
        read_caption_rows(path)
    for name in ("cut.png", "head.png"):
        path.write_text(f"image,caption\nimg/noise.png,가\nimg/{name},다\n", encoding="utf-8")
        with pytest.raises(DataError, match=rf"rows\.csv, line 3, column 'image': .*{name}.* is truncated or corrupt"):
            read_caption_rows(path)


def test_empty_caption_names_its_column(folder: Path) -> None:
    path = jsonl(folder / "rows.jsonl", [{"image": "img/a.png", "caption": " \u200b"}])
    with pytest.raises(DataError, match=r"line 1, column 'caption': expected a caption text"):
        read_caption_rows(path)


def coco_file(folder: Path, images: list[dict], annotations: list[dict]) -> Path:
    path = folder / "captions.json"
    path.write_text(json.dumps({"info": {}, "images": images, "annotations": annotations}, indent=1), encoding="utf-8")
    return path


def test_coco_errors_name_the_entry(folder: Path) -> None:
    images = [{"id": 1, "file_name": "img/a.png"}, {"id": 7, "file_name": "img/gone.png"}]
    notes = [{"id": 1, "image_id": 1, "caption": "가"}, {"id": 2, "image_id": 7, "caption": "나"}]
    path = coco_file(folder, images, notes)
    lines = path.read_text(encoding="utf-8").splitlines()
    gone = next(i + 1 for i, text in enumerate(lines) if "gone.png" in text) - 2  # its entry's "{"
    with pytest.raises(DataError, match=rf"captions\.json, line {gone}, column 'file_name': image 'img/gone\.png'"):
        read_caption_rows(path)
    notes[1]["image_id"] = 9
    path = coco_file(folder, images, notes)
    lines = path.read_text(encoding="utf-8").splitlines()
    where = next(i + 1 for i, text in enumerate(lines) if '"image_id": 9' in text) - 2
    with pytest.raises(DataError, match=rf"line {where}, column 'image_id': annotations\[1\] names image_id 9"):
        read_caption_rows(path)
    path.write_text(json.dumps({"images": []}), encoding="utf-8")
    with pytest.raises(DataError, match="is not COCO captions JSON"):
        read_caption_rows(path, format="coco_captions")


def test_item_start_lines_respects_strings_and_nesting() -> None:
    text = '{"a": "[{x", "images": [\n {"id": 1, "n": [{"z": 1}]},\n\n {"id": "}"}, 3\n], "b": [1]}'
    assert item_start_lines(text) == {"images": [2, 4, 4], "b": [5]}
    # a top-level list; and a wrapper whose other values hold objects nested as deep as the list's items
    assert item_start_lines('[\n{"a": [1]},\n\n"x"]') == {None: [2, 4]}
    assert item_start_lines('{"meta": {"m": {"x": 1}},\n"data": [\n{"a": 1}]}') == {"data": [3]}


# ---------------------------------------------------------------- object/count accuracy


def test_object_count_accuracy_on_hand_made_captions() -> None:
    vocabulary = CaptionVocabulary.load(DATA / "vocabulary.json")
    truth = {"apple": 2, "cat": 1}
    cases = [
        ("왼쪽에 빨간 사과 두 개, 오른쪽에 고양이 한 마리가 있다.", True, True),
        ("한 마리의 고양이와 두 개의 사과가 있다.", True, True),  # counts before the noun, joined by 의
        ("사과 2개와 고양이 하나가 있다.", True, True),  # digits, a standalone number
        ("Two red apples on the left and a cat on the right.", True, True),
        ("A cat and three apples.", False, True),  # wrong count
        ("사과 두 개가 있다.", False, False),  # the cat is missing
        ("사과 두 개, 고양이 한 마리, 강아지 한 마리가 있다.", False, False),  # a dog that is not there
        ("사과와 고양이가 있다.", False, True),  # no counts said
        ("사과 두 개와 고양이 한 마리, 그리고 사과 세 개가 있다.", False, True),  # contradicts itself
        ("개구리 두 마리 옆에 사과 두 개와 고양이 한 마리가 있다.", True, True),  # 개구리 is no 개, nor known
    ]
    for caption, exact, named in cases:
        scores = object_count_scores([caption], [truth], vocabulary)
        assert (scores.exact, scores.objects) == (float(exact), float(named)), caption
    everything = object_count_scores([c for c, _, _ in cases], [truth] * len(cases), vocabulary)
    assert everything.exact == pytest.approx(5 / 10) and everything.objects == pytest.approx(8 / 10)
    assert everything.n == 10
    with pytest.raises(ValueError, match="2 captions but 1 scenes"):
        object_count_scores(["a", "b"], [truth], vocabulary)
