"""Generate data/ko-caption, the bundled image-captioning set (run once; the output is committed):

    data/ko-caption/images/{train,val,test,test_novel}/NNNNN.png   128×128 scenes
    data/ko-caption/{split}.jsonl          one row per (image, reference): image, caption (Korean), caption_en
    data/ko-caption/{split}.scenes.jsonl   one row per image: what is drawn where (objects, counts, sizes,
                                           colours, positions, boxes), the truth object/count accuracy reads
    data/ko-caption/val.coco.json          the val split as COCO captions (images + annotations, Korean)
    data/ko-caption/vocabulary.json        object names, number words and classifiers, for parsing captions
    data/ko-caption/manifest.json          seed, sizes, font and library versions, held-out combinations

A scene holds one to four kinds of object (each 1–3 of a kind, one size, a colour where the kind has one)
drawn from Noto Color Emoji glyphs on a solid, gradient or blotchy background. A column (왼쪽/가운데/오른쪽)
holds one group, drawn around the middle, or two, one above (위) the other (아래). Every image gets three to
five references in different templates and orders; the English caption of a row translates its Korean one.

`test_novel` holds only scenes with at least one held-out combination (an object with a colour, a size, a
count or a column it never has in train, val or test); every attribute value of a held-out combination is
seen in training with other objects, so the split measures composition, not new words.

Needs Debian's fonts-noto-color-emoji (apt-get install fonts-noto-color-emoji) and the `emoji` package; CI
does not regenerate. Output is byte-for-byte the same for the same seed, font, Pillow and emoji versions.

python scripts/make_caption_data.py [--out data/ko-caption] [--train 2500 --val 300 --test 300 --novel 300]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

import emoji
import numpy as np
from matplotlib.colors import hsv_to_rgb, rgb_to_hsv
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parents[1]
FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
SEED = 19
SIZE = 128  # image side in pixels
GLYPH = {"small": 16, "medium": 22, "large": 30}  # longest side of a drawn object, in pixels
PALETTE = 96  # colours per PNG: a palette image is a third of an RGB one, and the glyphs stay clean


@dataclass(frozen=True)
class Kind:
    """An object kind: its glyph, its names, the Korean classifier it is counted with, the colours it comes in."""

    key: str  # the English name, the id in scenes and vocabulary
    glyph: str
    ko: str  # the `emoji` package's Korean name, its colour word or "얼굴" dropped (checked in `check_names`)
    en_plural: str
    classifier: str
    colours: tuple[str, ...] = ()  # the first is the glyph's own colour
    bold: bool = False  # thin light lines (the bicycle) vanish at 16 px on most backgrounds: edge them


KINDS = [
    Kind("apple", "🍎", "사과", "apples", "개", ("red", "green", "yellow")),
    Kind("cat", "🐱", "고양이", "cats", "마리"),
    Kind("dog", "🐶", "강아지", "dogs", "마리"),
    Kind("car", "🚗", "자동차", "cars", "대", ("red", "blue", "green", "yellow")),
    Kind("star", "⭐", "별", "stars", "개", ("yellow", "red", "blue")),
    Kind("soccer ball", "⚽", "축구공", "soccer balls", "개"),
    Kind("balloon", "🎈", "풍선", "balloons", "개", ("red", "blue", "green", "yellow")),
    Kind("banana", "🍌", "바나나", "bananas", "개"),
    Kind("fish", "🐟", "물고기", "fish", "마리"),
    Kind("tree", "🌳", "나무", "trees", "그루"),
    Kind("house", "🏠", "집", "houses", "채"),
    Kind("bicycle", "🚲", "자전거", "bicycles", "대", bold=True),
    Kind("turtle", "🐢", "거북이", "turtles", "마리"),
    Kind("key", "🔑", "열쇠", "keys", "개"),
    Kind("duck", "🦆", "오리", "ducks", "마리"),
    Kind("rocket", "🚀", "로켓", "rockets", "대"),
]
BY_KEY = {k.key: k for k in KINDS}

# (object, attribute, value) never drawn in train/val/test; test_novel scenes each hold at least one
HELD_OUT: list[tuple[str, str, str | int]] = [
    ("apple", "colour", "yellow"),
    ("balloon", "colour", "green"),
    ("car", "colour", "blue"),
    ("star", "colour", "red"),
    ("cat", "size", "large"),
    ("house", "size", "small"),
    ("duck", "size", "large"),
    ("rocket", "size", "small"),
    ("dog", "count", 3),
    ("fish", "count", 2),
    ("bicycle", "count", 3),
    ("tree", "count", 3),
    ("banana", "column", "right"),
    ("turtle", "column", "left"),
    ("key", "column", "middle"),
    ("soccer ball", "column", "left"),
]

COLUMNS = ("left", "middle", "right")
# target hues (degrees) a glyph's main colour is turned to
HUES = {"red": 2.0, "yellow": 50.0, "green": 115.0, "blue": 215.0}

KO_NUMBER = {1: "한", 2: "두", 3: "세"}
KO_SIZE = {"small": ["작은", "조그만"], "large": ["큰", "커다란"], "medium": [""]}
KO_COLOUR = {
    "red": ["빨간", "빨간색"],
    "blue": ["파란", "파란색"],
    "green": ["초록", "초록색"],
    "yellow": ["노란", "노란색"],
}
KO_COLUMN = {"left": ["왼쪽", "왼편"], "middle": ["가운데"], "right": ["오른쪽", "오른편"]}
KO_ROW = {"top": ["위", "위쪽"], "bottom": ["아래", "아래쪽"]}
EN_NUMBER = {2: "two", 3: "three"}
EN_SIZE = {"small": ["small", "little"], "large": ["big", "large"], "medium": [""]}
EN_COLUMN = {"left": "left", "middle": "middle", "right": "right"}
EN_COLUMN_ALONE = {"left": ["on the left", "on the left side"], "middle": ["in the middle", "in the center"],
                   "right": ["on the right", "on the right side"]}  # fmt: skip
EN_ROW = {"top": ["top", "upper"], "bottom": ["bottom", "lower"]}


@dataclass
class Group:
    """Some objects of one kind in one place of the scene."""

    kind: str
    count: int
    size: str  # small | medium | large
    colour: str | None
    column: str  # left | middle | right
    row: str | None  # top | bottom when the column holds two groups, else None
    boxes: list[list[int]] = field(default_factory=list)  # [x0, y0, x1, y1] per object

    def combinations(self) -> set[tuple[str, str, str | int]]:
        found: set[tuple[str, str, str | int]] = {
            (self.kind, "size", self.size),
            (self.kind, "count", self.count),
            (self.kind, "column", self.column),
        }
        if self.colour:
            found.add((self.kind, "colour", self.colour))
        return found


# ---------------------------------------------------------------- glyphs


def check_names() -> None:
    """Our Korean names are the `emoji` package's (a colour word or 얼굴 "face" dropped): say so or stop."""
    emoji.config.load_language("ko")
    for kind in KINDS:
        data = emoji.EMOJI_DATA.get(kind.glyph) or emoji.EMOJI_DATA[kind.glyph + "\ufe0f"]
        name = data["ko"].strip(":").split("_")
        if kind.ko not in name:
            raise SystemExit(f"{kind.glyph}: the emoji package names it {data['ko']}, not {kind.ko}")


def render_glyphs() -> dict[str, Image.Image]:
    """Each kind's glyph, cropped to its ink, at the font's one bitmap size (CBDT fonts have no outlines)."""
    font = ImageFont.truetype(str(FONT), 109)
    glyphs = {}
    for kind in KINDS:
        canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((0, 0), kind.glyph, font=font, embedded_color=True)
        box = canvas.getbbox()
        if box is None:
            raise SystemExit(f"{kind.glyph} ({kind.key}) draws nothing with {FONT}")
        glyphs[kind.key] = embolden(canvas.crop(box)) if kind.bold else canvas.crop(box)
    return glyphs


def embolden(glyph: Image.Image) -> Image.Image:
    """A dark edge round the lines, two pixels wide at the font's size, and the ink a little lighter: seen on
    light and dark backgrounds alike. The glyph's size stays."""
    alpha = glyph.getchannel("A")
    rgb = Image.new("RGB", glyph.size, (20, 30, 40))
    rgb.paste(ImageEnhance.Brightness(glyph.convert("RGB")).enhance(1.1), (0, 0), alpha)
    out = rgb.convert("RGBA")
    out.putalpha(alpha.filter(ImageFilter.MaxFilter(5)))
    return out


def tint(glyph: Image.Image, colour: str) -> Image.Image:
    """Turn the glyph's main colour to `colour`: only pixels near its dominant hue move, so an apple's leaf
    stays green and outlines stay dark."""
    rgba = np.asarray(glyph)
    hsv = rgb_to_hsv(rgba[..., :3] / 255.0)
    hue, sat, val = hsv[..., 0] * 360, hsv[..., 1], hsv[..., 2]
    ink = (rgba[..., 3] > 128) & (sat > 0.35) & (val > 0.25)
    counts, edges = np.histogram(hue[ink], bins=36, range=(0, 360))
    main = edges[counts.argmax()] + 5
    near = ink & (np.abs((hue - main + 180) % 360 - 180) < 35)
    hsv[..., 0] = np.where(near, (hue - main + HUES[colour]) % 360, hue) / 360
    if colour == "yellow":  # yellow is light: a red turned yellow looks brown unless it brightens too
        hsv[..., 2] = np.where(near, np.clip(val * 1.15 + 0.08, 0, 1), val)
    rgb = (hsv_to_rgb(hsv) * 255).round().astype(np.uint8)
    return Image.fromarray(np.dstack([rgb, rgba[..., 3]]))


def glyph_variants(glyphs: dict[str, Image.Image]) -> dict[tuple[str, str | None], Image.Image]:
    variants: dict[tuple[str, str | None], Image.Image] = {}
    for kind in KINDS:
        if not kind.colours:
            variants[kind.key, None] = glyphs[kind.key]
        for i, colour in enumerate(kind.colours):
            variants[kind.key, colour] = glyphs[kind.key] if i == 0 else tint(glyphs[kind.key], colour)
    return variants


def scaled(glyph: Image.Image, side: int) -> Image.Image:
    w, h = glyph.size
    scale = side / max(w, h)
    return glyph.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)


# ---------------------------------------------------------------- scenes


def background(rng: np.random.Generator) -> tuple[Image.Image, str]:
    """A solid colour, a two-colour gradient, or a colour with smooth blotches (light noise)."""

    def colour() -> np.ndarray:
        hsv = np.array([rng.random(), rng.uniform(0.04, 0.43), rng.uniform(0.6, 1.0)])
        if rng.random() < 0.15:  # some dark backgrounds
            hsv[2] = rng.uniform(0.2, 0.43)
        return hsv_to_rgb(hsv) * 255

    style = str(rng.choice(["solid", "gradient", "blotches"], p=[0.35, 0.35, 0.3]))
    base = colour()
    if style == "solid":
        pixels = np.broadcast_to(base, (SIZE, SIZE, 3))
    elif style == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        y, x = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
        t = np.cos(angle) * x + np.sin(angle) * y
        t = ((t - t.min()) / (t.max() - t.min()))[..., None]
        pixels = base * (1 - t) + colour() * t
    else:
        coarse = rng.normal(0, rng.uniform(8, 18), (8, 8, 3)).astype(np.float32)
        smooth = [np.asarray(Image.fromarray(coarse[..., c]).resize((SIZE, SIZE), Image.Resampling.BICUBIC))
                  for c in range(3)]  # fmt: skip
        pixels = base + np.stack(smooth, axis=-1)
    return Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8)), style


def region(column: str, row: str | None) -> tuple[int, int, int, int]:
    """Where a group may be drawn: its column's third, around the middle when alone, else its half."""
    left = COLUMNS.index(column) * SIZE // 3
    x0, x1 = left + 1, left + SIZE // 3 - 1
    if row is None:
        return x0, 22, x1, SIZE - 22
    return (x0, 2, x1, SIZE // 2 - 2) if row == "top" else (x0, SIZE // 2 + 2, x1, SIZE - 2)


def place(group: Group, sizes: list[tuple[int, int]], rng: np.random.Generator) -> list[list[int]] | None:
    """Boxes for the group's objects inside its region, none overlapping; None when they do not fit."""
    x0, y0, x1, y1 = region(group.column, group.row)
    for _ in range(300):
        boxes: list[list[int]] = []
        for w, h in sizes:
            if w > x1 - x0 or h > y1 - y0:
                return None
            x = int(rng.integers(x0, x1 - w + 1))
            y = int(rng.integers(y0, y1 - h + 1))
            box = [x, y, x + w, y + h]
            if any(box[0] < b[2] + 1 and b[0] < box[2] + 1 and box[1] < b[3] + 1 and b[1] < box[3] + 1 for b in boxes):
                break
            boxes.append(box)
        if len(boxes) == len(sizes):
            return boxes
    return None


def sample_groups(n: int, rng: np.random.Generator) -> list[Group]:
    kinds = rng.choice(len(KINDS), size=n, replace=False)
    columns: list[str] = []
    while len(columns) < n:
        column = str(rng.choice(COLUMNS))
        if columns.count(column) < 2:
            columns.append(column)
    groups = []
    for index, column in zip(kinds, columns, strict=True):
        kind = KINDS[int(index)]
        groups.append(
            Group(
                kind=kind.key,
                count=int(rng.integers(1, 4)),
                size=str(rng.choice(["small", "medium", "large"], p=[0.3, 0.4, 0.3])),
                colour=str(rng.choice(kind.colours)) if kind.colours else None,
                column=column,
                row=None,
            )
        )
    for column in COLUMNS:
        shared = [g for g in groups if g.column == column]
        if len(shared) == 2:
            rows = ["top", "bottom"] if rng.random() < 0.5 else ["bottom", "top"]
            shared[0].row, shared[1].row = rows
    return groups


def draw_scene(
    novel: bool, rng: np.random.Generator, variants: dict[tuple[str, str | None], Image.Image]
) -> tuple[Image.Image, list[Group], str]:
    """A scene with (novel) or without (not novel) a held-out combination, drawn."""
    held = set(HELD_OUT)
    # the number of kinds is drawn first, so that every split has the same mix of busy and sparse scenes
    n = int(rng.choice([1, 2, 3, 4], p=[0.2, 0.35, 0.3, 0.15]))
    while True:
        groups = sample_groups(n, rng)
        if any(g.combinations() & held for g in groups) != novel:
            continue
        drawn: list[tuple[Image.Image, list[int]]] = []
        for group in groups:
            side = GLYPH[group.size]
            glyphs = [
                scaled(variants[group.kind, group.colour], side + int(rng.integers(-1, 2))) for _ in range(group.count)
            ]
            boxes = place(group, [g.size for g in glyphs], rng)
            if boxes is None:  # does not fit its region: draw another scene
                break
            group.boxes = boxes
            drawn.extend(zip(glyphs, boxes, strict=True))
        else:
            break
    image, style = background(rng)
    for glyph, box in drawn:
        image.paste(glyph, (box[0], box[1]), glyph)
    return image, groups, style


# ---------------------------------------------------------------- captions


def has_final_consonant(word: str) -> bool:
    last = word[-1]
    return "가" <= last <= "힣" and (ord(last) - 0xAC00) % 28 != 0


def josa(word: str, with_final: str, without: str) -> str:
    return word + (with_final if has_final_consonant(word) else without)


def pick(options: list[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def reading_order(groups: list[Group]) -> list[Group]:
    return sorted(groups, key=lambda g: (COLUMNS.index(g.column), g.row != "top"))


def ko_phrase(group: Group, rng: np.random.Generator, count_first: bool) -> str:
    kind = BY_KEY[group.kind]
    words = [pick(KO_SIZE[group.size], rng)]
    if group.colour:
        words.append(pick(KO_COLOUR[group.colour], rng))
    noun = " ".join(w for w in [*words, kind.ko] if w)
    count = f"{KO_NUMBER[group.count]} {kind.classifier}"
    return f"{count}의 {noun}" if count_first else f"{noun} {count}"


def ko_place(group: Group, rng: np.random.Generator) -> str:
    column = pick(KO_COLUMN[group.column], rng)
    return f"{column} {pick(KO_ROW[group.row], rng)}" if group.row else column


def en_phrase(group: Group, rng: np.random.Generator) -> str:
    kind = BY_KEY[group.kind]
    words = [pick(EN_SIZE[group.size], rng), group.colour or ""]
    noun = " ".join(w for w in [*words, kind.key if group.count == 1 else kind.en_plural] if w)
    if group.count > 1:
        return f"{EN_NUMBER[group.count]} {noun}"
    article = pick(["a", "one"], rng)
    return f"{'an' if article == 'a' and noun[0] in 'aeiou' else article} {noun}"


def en_place(group: Group, rng: np.random.Generator) -> str:
    if group.row is None:
        return pick(EN_COLUMN_ALONE[group.column], rng)
    column = EN_COLUMN[group.column]
    if column == "middle":
        column = pick(["middle", "center"], rng)
    return f"{pick(['at the', 'in the'], rng)} {pick(EN_ROW[group.row], rng)} {column}"


def en_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def be(group: Group) -> str:
    return "is" if group.count == 1 else "are"


def caption(groups: list[Group], template: int, rng: np.random.Generator) -> tuple[str, str]:
    """One reference, Korean and English. Templates: 0 a list with one verb, 1 topic clauses (…에는 …이 있고),
    2 subject first (…이 …에 있고), 3 no positions, 4 보인다 / can be seen."""
    count_first = rng.random() < 0.3
    ko = [ko_phrase(g, rng, count_first) for g in groups]
    en = [en_phrase(g, rng) for g in groups]
    ko_at = [ko_place(g, rng) for g in groups]
    en_at = [en_place(g, rng) for g in groups]
    if template == 0:
        parts = [f"{p}에 {n}" for p, n in zip(ko_at, ko, strict=True)]
        text_ko = ", ".join([*parts[:-1], josa(parts[-1], "이", "가")]) + " 있다."
        text_en = f"There {be(groups[0])} " + en_list([f"{n} {p}" for n, p in zip(en, en_at, strict=True)]) + "."
    elif template == 1:
        clauses = [f"{p}에는 {josa(n, '이', '가')} 있" for p, n in zip(ko_at, ko, strict=True)]
        text_ko = "고, ".join(clauses) + "다."
        clauses_en = [f"{p} there {be(g)} {n}" for g, n, p in zip(groups, en, en_at, strict=True)]
        text_en = ", and ".join(clauses_en) + "."
    elif template == 2:
        clauses = [f"{josa(n, '이', '가')} {p}에 있" for p, n in zip(ko_at, ko, strict=True)]
        text_ko = "고, ".join(clauses) + "다."
        text_en = ", and ".join(f"{n} {be(g)} {p}" for g, n, p in zip(groups, en, en_at, strict=True)) + "."
    elif template == 3:
        listed = ko[0] if len(ko) == 1 else ", ".join([*ko[:-2], josa(ko[-2], "과", "와") + " " + ko[-1]])
        text_ko = f"{pick(['그림에', '그림에는', '화면에'], rng)} {josa(listed, '이', '가')} 있다."
        text_en = f"{pick(['The picture shows', 'The image shows', 'We see'], rng)} {en_list(en)}."
    else:
        clauses = [f"{p}에 {josa(n, '이', '가')} 보이" for p, n in zip(ko_at, ko, strict=True)]
        text_ko = "고, ".join(clauses)[: -len("보이")] + "보인다."
        text_en = "You can see " + en_list([f"{n} {p}" for n, p in zip(en, en_at, strict=True)]) + "."
    return text_ko, text_en[0].upper() + text_en[1:]


def references(groups: list[Group], rng: np.random.Generator) -> list[tuple[str, str]]:
    """Three to five different references: templates and group orders (reading order or shuffled) vary."""
    wanted = int(rng.integers(3, 6))
    found: list[tuple[str, str]] = []
    for _ in range(50):
        template = int(rng.integers(5))
        ordered = reading_order(groups) if rng.random() < 0.6 else [groups[i] for i in rng.permutation(len(groups))]
        ref = caption(ordered, template, rng)
        if ref[0] not in {f[0] for f in found}:
            found.append(ref)
        if len(found) == wanted:
            break
    return found


# ---------------------------------------------------------------- files


def write_jsonl(path: Path, rows: list[dict], compact: bool = False) -> None:
    separators = (",", ":") if compact else (", ", ": ")
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, separators=separators) + "\n")


def split_scenes(
    name: str, n: int, novel: bool, rng: np.random.Generator, variants: dict, out: Path
) -> Iterator[tuple[dict, list[dict]]]:
    folder = out / "images" / name
    folder.mkdir(parents=True, exist_ok=True)
    held = set(HELD_OUT)
    for i in range(n):
        image, groups, style = draw_scene(novel, rng, variants)
        relative = f"images/{name}/{i:05d}.png"
        image.quantize(PALETTE, dither=Image.Dither.NONE).save(out / relative, optimize=True)
        scene = {
            "image": relative,
            "background": style,
            "objects": [asdict(g) for g in reading_order(groups)],
            "held_out": sorted([list(c) for g in groups for c in g.combinations() & held], key=str),
        }
        refs = [{"image": relative, "caption": ko, "caption_en": en} for ko, en in references(groups, rng)]
        yield scene, refs


def coco(rows: list[dict], scenes: list[dict]) -> dict:
    ids = {scene["image"]: i + 1 for i, scene in enumerate(scenes)}
    return {
        "info": {"description": "n2m ko-caption val split (Korean captions), see README.md"},
        "licenses": [{"id": 1, "name": "SIL Open Font License 1.1 (Noto Color Emoji), see LICENSE.txt"}],
        "images": [
            {"id": ids[s["image"]], "file_name": s["image"], "width": SIZE, "height": SIZE, "license": 1}
            for s in scenes
        ],
        "annotations": [
            {"id": i + 1, "image_id": ids[r["image"]], "caption": r["caption"]} for i, r in enumerate(rows)
        ],
    }


def vocabulary() -> dict:
    """What caption_scores needs to read a caption's objects and counts back."""
    return {
        "objects": {k.key: {"ko": [k.ko], "en": sorted({k.key, k.en_plural})} for k in KINDS},
        "numbers": {
            "ko": {"한": 1, "하나": 1, "두": 2, "둘": 2, "세": 3, "셋": 3, "네": 4, "넷": 4},
            "en": {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4},
        },
        "classifiers": {"ko": sorted({k.classifier for k in KINDS})},
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "ko-caption")
    parser.add_argument("--train", type=int, default=2500)
    parser.add_argument("--val", type=int, default=300)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--novel", type=int, default=300)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    if not FONT.is_file():
        raise SystemExit(f"{FONT} is missing: apt-get install fonts-noto-color-emoji")
    check_names()
    variants = glyph_variants(render_glyphs())
    out: Path = args.out
    if (out / "images").exists():
        shutil.rmtree(out / "images")
    out.mkdir(parents=True, exist_ok=True)
    sizes = {"train": args.train, "val": args.val, "test": args.test, "test_novel": args.novel}
    counts = {}
    for index, (name, n) in enumerate(sizes.items()):
        # one generator per split: a split's scenes do not depend on the sizes of the others
        rng = np.random.default_rng([args.seed, index])
        scenes, rows = [], []
        for scene, refs in split_scenes(name, n, name == "test_novel", rng, variants, out):
            scenes.append(scene)
            rows.extend(refs)
        write_jsonl(out / f"{name}.jsonl", rows)
        write_jsonl(out / f"{name}.scenes.jsonl", scenes, compact=True)
        if name == "val":
            (out / "val.coco.json").write_text(json.dumps(coco(rows, scenes), ensure_ascii=False, indent=1) + "\n")
        counts[name] = {"images": len(scenes), "captions": len(rows)}
        print(f"{name}: {len(scenes)} images, {len(rows)} captions")
    (out / "vocabulary.json").write_text(json.dumps(vocabulary(), ensure_ascii=False, indent=1) + "\n")
    manifest = {
        "seed": args.seed,
        "image_size": SIZE,
        "glyph_sizes": GLYPH,
        "splits": counts,
        "held_out": [list(c) for c in HELD_OUT],
        "objects": [
            {"key": k.key, "emoji": k.glyph, "ko": k.ko, "classifier": k.classifier, "colours": k.colours}
            for k in KINDS
        ],
        "font": {"file": FONT.name, "sha256": sha256(FONT)},
        "versions": {"pillow": version("pillow"), "emoji": version("emoji"), "numpy": version("numpy")},
        "files": {p.name: sha256(p) for p in sorted(out.glob("*.json*")) if p.name != "manifest.json"},
        # one digest over every image (its path and bytes, in path order): a regenerated set can be compared at once
        "images_sha256": hashlib.sha256(
            b"".join(str(p.relative_to(out)).encode() + p.read_bytes() for p in sorted(out.glob("images/*/*.png")))
        ).hexdigest(),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
