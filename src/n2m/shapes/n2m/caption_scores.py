"""Object/count accuracy of captions of generated scenes: does a caption name exactly the objects in the image,
each with its count? Text metrics (BLEU, chrF, CIDEr-D) reward a caption that reads like the references; this
asks whether it is right about what is there.

A caption is read back with the generator's vocabulary (`data/ko-caption/vocabulary.json`: each object's names
per language, number words, Korean classifiers) into {object: count}, and compared with the scene's truth
(`{split}.scenes.jsonl`). Korean: a count is a number word and a classifier (두 마리), after the noun it counts
(고양이 두 마리) or, joined by 의, before it (두 마리의 고양이). English: a number word or article before the noun,
a few modifiers between (two small red apples). An object named without a count it can read gets count 0, so
the caption is wrong about it; one named twice with different counts gets -1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HANGUL = re.compile(r"[가-힣]")
KO_PARTICLE = "이가은는을를와과도만의"
KO_ADNOMINAL = ("한", "두", "세", "네")  # number forms that stand only before a classifier (한 마리, not 한)
EN_GAP = 4  # words an English number may stand before its noun: "a small red ..." holds two


@dataclass(frozen=True)
class CaptionVocabulary:
    """Object names by language (`objects[key][language]`, every form: singular and plural), number words by
    language, and Korean classifiers."""

    objects: dict[str, dict[str, list[str]]]
    numbers: dict[str, dict[str, int]]
    classifiers: dict[str, list[str]]

    @classmethod
    def load(cls, path: str | Path) -> CaptionVocabulary:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(data["objects"], data["numbers"], data.get("classifiers", {}))

    def names(self, language: str) -> dict[str, str]:
        """Every name form in `language` → its object."""
        return {name: key for key, names in self.objects.items() for name in names.get(language, [])}


@dataclass(frozen=True)
class ObjectCountScores:
    """Fractions of captions: `exact` names exactly the image's objects with their counts; `objects` names
    exactly its objects, counts aside."""

    exact: float
    objects: float
    n: int


def alternatives(words: Sequence[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def read_objects(caption: str, vocabulary: CaptionVocabulary, language: str | None = None) -> dict[str, int]:
    """The objects a caption names, each with the count it says. `language` (ko, en) defaults to ko when the
    caption has Hangul."""
    language = language or ("ko" if HANGUL.search(caption) else "en")
    names = vocabulary.names(language)
    numbers = vocabulary.numbers.get(language, {})
    if not names:
        raise ValueError(f"the vocabulary has no object names in {language!r}")
    text = caption.lower() if language == "en" else caption
    name_end = "" if language == "ko" else r"(?!\w)"  # Korean particles attach to the noun
    mentions = [
        (m.start(), m.end(), names[m.group()])
        for m in re.finditer(rf"(?<!\w)(?:{alternatives(names)}){name_end}", text)
    ]
    counts = (
        counts_ko(text, numbers, vocabulary.classifiers.get("ko", [])) if language == "ko" else counts_en(text, numbers)
    )
    # a count goes to the nearest mention on its side (Korean: before it, or after it when joined by 의; English:
    # after it) when no other count stands between them; a count of an unknown noun (개구리 두 마리) goes nowhere
    said: list[int | None] = [None] * len(mentions)
    positions = [c[0] for c in counts]
    for position, value, after in counts:
        side = [i for i, m in enumerate(mentions) if (m[0] >= position if after else m[1] <= position)]
        if not side:
            continue
        nearest = side[0] if after else side[-1]
        lo, hi = sorted((position, mentions[nearest][0] if after else mentions[nearest][1]))
        if said[nearest] is not None or any(lo < p < hi for p in positions):
            continue
        if language == "en" and gap_words(text, lo, hi) > EN_GAP:
            continue
        said[nearest] = value
    found: dict[str, int] = {}
    for (_, _, key), value in zip(mentions, said, strict=True):
        count = value or 0
        if key not in found or found[key] == 0:
            found[key] = count
        elif count not in (0, found[key]):
            found[key] = -1  # the caption contradicts itself
    return found


def counts_ko(text: str, numbers: Mapping[str, int], classifiers: Sequence[str]) -> list[tuple[int, int, bool]]:
    """(position, count, counts the noun after it) for each Korean count: a number word or digits with a
    classifier (두 마리, 2마리), or a standalone number (사과 하나)."""
    pattern = re.compile(
        rf"(?<!\w)(?P<num>{alternatives(numbers)}|\d+)\s*(?P<cls>{alternatives(classifiers)})?(?P<of>의)?"
    )
    found = []
    for m in pattern.finditer(text):
        rest = text[m.end() :]
        if m["cls"] is None and m["num"] in KO_ADNOMINAL:
            continue  # these forms count only with a classifier: 한 of 한국 is no number
        if m["of"] is None and not ends_word(rest):
            continue  # 대 of 대학, 개 of 개구리, 하나 of 하나님: a longer word
        value = int(m["num"]) if m["num"].isdigit() else numbers[m["num"]]
        found.append((m.start(), value, m["of"] is not None))
    return found


def ends_word(rest: str) -> bool:
    """Whether a Korean word ends where `rest` starts: at a space or punctuation, or after one particle."""
    if rest[:1] in KO_PARTICLE:
        rest = rest[1:]
    return not rest or not rest[0].isalnum()


def counts_en(text: str, numbers: Mapping[str, int]) -> list[tuple[int, int, bool]]:
    """(position, count, True) for each English number word, article or digits: they count the noun after."""
    pattern = re.compile(rf"(?<!\w)(?:{alternatives(numbers)}|\d+)(?!\w)")
    return [
        (m.end(), int(m.group()) if m.group().isdigit() else numbers[m.group()], True) for m in pattern.finditer(text)
    ]


def gap_words(text: str, start: int, end: int) -> int:
    """Words between a number and a noun; punctuation in between ends the phrase (counted as too far)."""
    between = text[start:end]
    return EN_GAP + 1 if re.search(r"[^\w\s]", between) else len(between.split())


def read_scene_objects(path: str | Path) -> dict[Path, dict[str, int]]:
    """A `{split}.scenes.jsonl` file: each image (resolved like `read_caption_rows` resolves it, relative to the
    file's folder) → {object: count}."""
    path = Path(path)
    truth = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            scene = json.loads(line)
            truth[path.parent / scene["image"]] = {o["kind"]: o["count"] for o in scene["objects"]}
    return truth


def object_count_scores(
    captions: Sequence[str],
    truths: Sequence[Mapping[str, int]],
    vocabulary: CaptionVocabulary,
    language: str | None = None,
) -> ObjectCountScores:
    """How often each caption names exactly its image's objects (`objects`) and with their counts (`exact`)."""
    if len(captions) != len(truths):
        raise ValueError(f"{len(captions)} captions but {len(truths)} scenes")
    if not captions:
        return ObjectCountScores(0.0, 0.0, 0)
    exact = named = 0
    for caption, truth in zip(captions, truths, strict=True):
        found = read_objects(caption, vocabulary, language)
        named += found.keys() == truth.keys()
        exact += found == dict(truth)
    return ObjectCountScores(exact / len(captions), named / len(captions), len(captions))
