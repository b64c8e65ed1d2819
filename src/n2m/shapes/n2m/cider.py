"""CIDEr-D, the COCO captioning metric (Vedantam, Zitnick and Parikh, 2015), computed by COCO's own code.

The scoring is `pycocoevalcap`'s `Cider` (the coco-caption CIDEr-D: n-grams 1–4, tf-idf weights with the
document frequencies taken over the evaluated split's references, clipped candidate counts, a Gaussian length
penalty with sigma 6, the mean over n, averaged over an image's references, ×10). Only its tokenizer is left out:
coco-caption runs Stanford's PTB tokenizer in Java, so `tokenize` here does what it does to a caption in plain
Python (lower case, punctuation dropped, split at spaces), and works on Korean, where a token is an eojeol
(a word with its particles attached: 사과가, 사과를 are different tokens, as they are in the references).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pycocoevalcap.cider.cider import Cider

Tokenize = Callable[[str], list[str]]

# the PTB tokenizer's punctuation, which coco-caption drops, and every other Unicode punctuation or symbol
PUNCTUATION = re.compile(r"[^\w\s]|_")


def tokenize(text: str) -> list[str]:
    """A caption's tokens as coco-caption scores them: NFC, lower case, punctuation removed, split at spaces."""
    return PUNCTUATION.sub(" ", unicodedata.normalize("NFC", text).lower()).split()


@dataclass(frozen=True)
class CiderResult:
    """The split's CIDEr-D (COCO's 0–10 scale: papers print it ×100) and each image's."""

    score: float
    per_image: list[float]


def cider_d_scores(
    predictions: Sequence[str], references: Sequence[Sequence[str]], tokenize: Tokenize = tokenize
) -> CiderResult:
    """CIDEr-D of one generated caption per image against that image's references (one or more each).

    The n-gram weights come from these references, so the score belongs to the whole split: compute it once
    over all images, never per batch and then averaged.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} lists of references")
    if not predictions:
        return CiderResult(0.0, [])
    for i, refs in enumerate(references):
        if isinstance(refs, str) or not refs:
            raise ValueError(f"image {i}: expected a list of one or more reference captions, got {refs!r}")
    tokenized_refs = {i: [" ".join(tokenize(r)) for r in refs] for i, refs in enumerate(references)}
    if not any(ref for refs in tokenized_refs.values() for ref in refs):
        return CiderResult(0.0, [0.0] * len(predictions))  # no reference has a token: nothing to weigh
    candidates = {i: [" ".join(tokenize(p))] for i, p in enumerate(predictions)}
    score, per_image = Cider().compute_score(tokenized_refs, candidates)
    return CiderResult(float(score), [float(s) for s in per_image])


def cider_d(predictions: Sequence[str], references: Sequence[Sequence[str]], tokenize: Tokenize = tokenize) -> float:
    """The split's CIDEr-D on COCO's 0–10 scale (see `cider_d_scores`)."""
    return cider_d_scores(predictions, references, tokenize).score
