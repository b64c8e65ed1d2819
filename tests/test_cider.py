"""CIDEr-D (n2m.shapes.n2m.cider): COCO's own scorer behind our tokenizer, checked against a value worked out by
hand and against CIDEr-D written out from the paper's formula, on the committed captions."""

from __future__ import annotations

import math
import random
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from pycocoevalcap.cider.cider import Cider

from n2m.readers import read_caption_rows, references_by_image
from n2m.shapes.n2m.cider import cider_d, cider_d_scores, tokenize

DATA = Path(__file__).resolve().parents[1] / "data" / "ko-caption"


def paper_cider_d(candidates: list[str], references: list[list[str]], n: int = 4, sigma: float = 6.0) -> list[float]:
    """CIDEr-D as Vedantam et al. define it: tf-idf n-gram vectors (df over images' reference sets), candidate
    weights clipped to the reference's, a Gaussian penalty on the length difference, mean over n, ×10."""

    def grams(tokens: list[str]) -> Counter:
        return Counter(tuple(tokens[i : i + k]) for k in range(1, n + 1) for i in range(len(tokens) - k + 1))

    refs = [[grams(tokenize(r)) for r in rs] for rs in references]
    df: Counter = Counter(g for rs in refs for g in set().union(*rs))
    log_images = math.log(len(references))

    def vector(counts: Counter) -> list[dict]:
        out: list[dict] = [{} for _ in range(n)]
        for g, tf in counts.items():
            out[len(g) - 1][g] = tf * (log_images - math.log(max(1.0, df[g])))
        return out

    scores = []
    for candidate, rs, texts in zip(candidates, refs, references, strict=True):
        tokens = tokenize(candidate)
        c = vector(grams(tokens))
        total = [0.0] * n
        for r, text in zip(rs, texts, strict=True):
            v = vector(r)
            penalty = math.exp(-((len(tokens) - len(tokenize(text))) ** 2) / (2 * sigma**2))
            for k in range(n):
                dot = sum(min(w, v[k].get(g, 0.0)) * v[k].get(g, 0.0) for g, w in c[k].items())
                norms = math.sqrt(sum(w * w for w in c[k].values())) * math.sqrt(sum(w * w for w in v[k].values()))
                total[k] += (dot / norms if norms else 0.0) * penalty
        scores.append(10 * sum(total) / n / len(rs))
    return scores


def test_tokenize_drops_punctuation_and_case_keeps_korean_words() -> None:
    assert tokenize("A Cat, on the LEFT!") == ["a", "cat", "on", "the", "left"]
    assert tokenize("왼쪽에 사과 두 개가 있다.") == ["왼쪽에", "사과", "두", "개가", "있다"]
    decomposed = unicodedata.normalize("NFD", "사과가")  # conjoining jamo, as some macOS files hold it
    assert decomposed != "사과가" and tokenize(decomposed) == ["사과가"]


def test_worked_example() -> None:
    # two images; every n-gram is in one image's references, so each weighs log 2 and cosines are plain:
    # image 1: vs "a b" 1-grams 1, 2-grams 1; vs "a c" 1-grams 1/2, 2-grams 0 → (1.5 + 1) / 4 / 2 refs × 10
    # image 2: identical to its one reference → (1 + 1) / 4 × 10; no 3- or 4-grams anywhere
    result = cider_d_scores(["a b", "d e"], [["a b", "a c"], ["d e"]])
    assert result.per_image == pytest.approx([3.125, 5.0])
    assert result.score == pytest.approx(4.0625)
    assert cider_d(["A b.", "D, e"], [["a b", "a c"], ["d e"]]) == pytest.approx(4.0625)


def test_clipping_and_length_penalty() -> None:
    refs = [["the red apple is on the left"], ["a cat sits in the middle"]]
    good = cider_d_scores(["the red apple is on the left", "a cat sits in the middle"], refs).per_image
    repeated = cider_d_scores(["apple apple apple apple apple apple", "a cat sits in the middle"], refs).per_image
    longer = cider_d_scores(["the red apple is on the left " + "red " * 8, "a cat sits in the middle"], refs)
    assert good[0] > repeated[0] > 0 and good[0] > longer.per_image[0]
    expected = paper_cider_d(["the red apple is on the left " + "red " * 8, "a cat sits in the middle"], refs)
    assert longer.per_image == pytest.approx(expected)


def test_equals_the_paper_formula_on_the_committed_captions() -> None:
    rng = random.Random(0)
    refs = list(references_by_image(read_caption_rows(DATA / "val.jsonl", check_images=False)).values())
    candidates, held_refs = [], []
    for captions in refs:  # one reference is the candidate (sometimes shuffled or cut), the rest references
        words = captions[0].split()
        if rng.random() < 0.3:
            rng.shuffle(words)
        elif rng.random() < 0.3:
            words = words[: max(1, len(words) // 2)]
        candidates.append(" ".join(words))
        held_refs.append(captions[1:])
    ours = cider_d_scores(candidates, held_refs)
    assert ours.per_image == pytest.approx(paper_cider_d(candidates, held_refs), rel=1e-9, abs=1e-12)
    assert 0 < ours.score < 10
    # and it is COCO's code: the same as calling pycocoevalcap on text tokenized the same way
    joined = {i: [" ".join(tokenize(r)) for r in rs] for i, rs in enumerate(held_refs)}
    coco, _ = Cider().compute_score(joined, {i: [" ".join(tokenize(c))] for i, c in enumerate(candidates)})
    assert ours.score == pytest.approx(float(coco), rel=1e-12)


def test_bad_input() -> None:
    assert cider_d([], []) == 0.0
    with pytest.raises(ValueError, match="2 predictions but 1"):
        cider_d(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="image 0: expected a list"):
        cider_d(["a"], ["a"])  # type: ignore[list-item]
    assert cider_d_scores(["a", "b"], [["!"], ["?"]]).per_image == [0.0, 0.0]
