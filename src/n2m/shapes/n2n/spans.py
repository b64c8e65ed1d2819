"""Spans for the N2N shape: BIO tags ↔ spans, character offsets ↔ subword tokens, constrained BIO decoding.

A *unit* is what a data file labels: a word (CoNLL, KLUE-DP, CoNLL-U) or a character (KLUE-NER). Units are
character ranges `(start, end)` of the original text. The model reads each unit from the subword token that
holds the unit's first character, plus where in that token the unit starts, so entity boundaries inside a
token (KLUE-NER's `<박:PS>씨의` with e5's single token `▁박씨`) are still exact: spans are decoded over units
and mapped to characters through the units' own offsets, never through token offsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

# where in its token a unit starts: 0 = the token's leading whitespace (Metaspace `▁` pieces cover the space
# before a word), k + 1 = the k-th non-space character of the token, capped
MAX_IN_TOKEN_OFFSET = 15
NUM_OFFSET_BUCKETS = MAX_IN_TOKEN_OFFSET + 2


class Span(NamedTuple):
    """`[start, end)` over units or characters, and the entity type."""

    start: int
    end: int
    label: str


def _split_tag(tag: str) -> tuple[str, str]:
    """'B-PER' → ('B', 'PER'); 'O' → ('O', '_'): seqeval's reading of a tag (prefix first, type after '-')."""
    prefix = tag[0] if tag else "O"
    kind = tag[1:].split("-", maxsplit=1)[-1] or "_"
    return prefix, kind


def _chunk_ends(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    # conlleval's rules, as seqeval's default (non-strict) mode applies them
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != kind


def _chunk_starts(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != kind


def bio_to_spans(tags: Sequence[str]) -> list[Span]:
    """Entities of one tag sequence, read exactly as seqeval's default mode reads them: an `I-X` after `O`
    (or after another type) starts a new entity. IOBES tags are read too."""
    spans: list[Span] = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, tag in enumerate([*tags, "O"]):
        prefix, kind = _split_tag(tag)
        if _chunk_ends(prev_tag, prefix, prev_type, kind):
            spans.append(Span(begin, i, prev_type))
        if _chunk_starts(prev_tag, prefix, prev_type, kind):
            begin = i
        prev_tag, prev_type = prefix, kind
    return spans


def spans_to_bio(spans: Sequence[tuple[int, int, str]], length: int) -> list[str]:
    """BIO tags for `length` units; spans must not overlap."""
    tags = ["O"] * length
    for start, end, label in sorted(spans):
        if not 0 <= start < end <= length:
            raise ValueError(f"span {(start, end, label)} is outside 0..{length}")
        if any(t != "O" for t in tags[start:end]):
            raise ValueError(f"span {(start, end, label)} overlaps another span")
        tags[start] = f"B-{label}"
        for i in range(start + 1, end):
            tags[i] = f"I-{label}"
    return tags


def entity_types(label_names: Sequence[str]) -> list[str]:
    """The entity types of a BIO label set, sorted: ['B-LOC', 'I-LOC', 'O'] → ['LOC']."""
    return sorted({_split_tag(name)[1] for name in label_names if _split_tag(name)[0] != "O"})


def unit_spans_to_chars(spans: Sequence[Span], unit_offsets: Sequence[tuple[int, int]]) -> list[Span]:
    """Spans over units → spans over characters: from the first unit's start to the last unit's end."""
    return [Span(unit_offsets[s.start][0], unit_offsets[s.end - 1][1], s.label) for s in spans]


def char_spans_to_units(spans: Sequence[tuple[int, int, str]], unit_offsets: Sequence[tuple[int, int]]) -> list[Span]:
    """Character spans → unit spans (the units a span overlaps); the inverse of `unit_spans_to_chars` when span
    edges fall on unit edges, which they do for spans read from the file."""
    out = []
    for start, end, label in spans:
        inside = [i for i, (a, b) in enumerate(unit_offsets) if a < end and b > start]
        if not inside:
            raise ValueError(f"span {(start, end, label)} covers no unit")
        out.append(Span(inside[0], inside[-1] + 1, label))
    return out


def align_units_to_tokens(
    text: str, units: Sequence[tuple[int, int]], token_offsets: Sequence[tuple[int, int]]
) -> tuple[list[int], list[int]]:
    """For each unit, the token holding its first character (-1: none, e.g. cut off by truncation) and the
    unit's offset bucket inside that token.

    A fast tokenizer's offsets can include the whitespace before a word (Metaspace `▁` pieces of XLM-R-style
    tokenizers such as e5's): that whitespace is bucket 0 of the token, and the token's first real character
    is bucket 1, so a word-level unit always reads its token at bucket 1 whatever the tokenizer. Special tokens
    (empty offsets) hold nothing.
    """
    owner = [-1] * (len(text) + 1)
    bucket = [0] * (len(text) + 1)
    for t, (a, b) in enumerate(token_offsets):
        k = 0
        for c in range(a, b):
            if owner[c] != -1:
                continue  # overlapping offsets: the first token keeps the character
            owner[c] = t
            if text[c].isspace() and k == 0:
                bucket[c] = 0
            else:
                bucket[c] = min(k, MAX_IN_TOKEN_OFFSET) + 1
                k += 1
    unit_token, unit_bucket = [], []
    for start, end in units:
        chars = [c for c in range(start, end) if owner[c] != -1]
        solid = [c for c in chars if not text[c].isspace()]  # a word is read where its first letter is
        c = (solid or chars or [None])[0]
        unit_token.append(owner[c] if c is not None else -1)
        unit_bucket.append(bucket[c] if c is not None else 0)
    return unit_token, unit_bucket


def bio_transitions(label_names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(allowed[prev, next], allowed_first[next]) for BIO tags: `I-X` only after `B-X` or `I-X`."""
    n = len(label_names)
    parts = [_split_tag(name) for name in label_names]
    allowed = torch.ones(n, n, dtype=torch.bool)
    first = torch.ones(n, dtype=torch.bool)
    for j, (prefix, kind) in enumerate(parts):
        if prefix != "I":
            continue
        first[j] = False
        for i, (prev_prefix, prev_kind) in enumerate(parts):
            allowed[i, j] = prev_prefix in ("B", "I") and prev_kind == kind
    return allowed, first


def constrained_decode(log_probs: torch.Tensor, allowed: torch.Tensor, first: torch.Tensor) -> list[int]:
    """Viterbi over one sequence `(U, C)`: the most probable tag path that never puts `I-X` after `O`."""
    if log_probs.shape[0] == 0:
        return []
    neg = torch.tensor(float("-inf"), dtype=log_probs.dtype)
    transition = torch.where(allowed, torch.tensor(0.0, dtype=log_probs.dtype), neg)
    score = torch.where(first, log_probs[0], neg)
    back = []
    for u in range(1, log_probs.shape[0]):
        total = score[:, None] + transition  # (prev, next)
        score, best = total.max(0)
        score = score + log_probs[u]
        back.append(best)
    path = [int(score.argmax())]
    for best in reversed(back):
        path.append(int(best[path[-1]]))
    return path[::-1]


def decode_units(
    log_probs: torch.Tensor, covered: torch.Tensor, transitions: tuple[torch.Tensor, torch.Tensor] | None = None
) -> list[int]:
    """Tag index per unit of one sentence: argmax, or the constrained BIO path when `transitions` is given.

    Units the model did not see (`covered` False: cut off by `max_length`, or whitespace a WordPiece tokenizer
    drops) get -1; decoding runs over the units it saw, so an entity may run across an unseen space.
    """
    seen = covered.nonzero().flatten()
    out = [-1] * int(covered.shape[0])
    if seen.numel() == 0:
        return out
    scores = log_probs[seen].float()
    path = constrained_decode(scores, *transitions) if transitions is not None else scores.argmax(-1).tolist()
    for u, tag in zip(seen.tolist(), path, strict=True):
        out[u] = int(tag)
    return out


def predicted_spans(tag_ids: Sequence[int], label_names: Sequence[str]) -> list[Span]:
    """Entity spans over unit indices from decoded tag ids; units with -1 are skipped, not read as `O`."""
    seen = [u for u, t in enumerate(tag_ids) if t >= 0]
    spans = bio_to_spans([label_names[tag_ids[u]] for u in seen])
    return [Span(seen[s.start], seen[s.end - 1] + 1, s.label) for s in spans]
