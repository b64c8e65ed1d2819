"""Spans: BIO ↔ spans as seqeval reads them, units ↔ subword tokens, constrained decoding, and the round trip
gold spans → unit labels as the model sees them → decoded spans over every sentence of KLUE-NER's test split."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest
import torch
from helpers import build_metaspace_backbone
from seqeval.metrics.sequence_labeling import get_entities

from n2m.core.card import Encoding
from n2m.shapes.n2n.encoding import encode_units
from n2m.shapes.n2n.examples import load_token_examples, split_units
from n2m.shapes.n2n.spans import (
    Span,
    align_units_to_tokens,
    bio_to_spans,
    bio_transitions,
    char_spans_to_units,
    constrained_decode,
    decode_units,
    predicted_spans,
    spans_to_bio,
    unit_spans_to_chars,
)

ROOT = Path(__file__).resolve().parents[1]
KLUE_NER = ROOT / "data/klue_ner/klue-ner-v1.1_dev.tsv"
SPLIT = ROOT / "data/splits/klue-ner.json"


@pytest.fixture(scope="session")
def klue_ner_examples():
    return load_token_examples(KLUE_NER, "klue-ner")


@pytest.fixture(scope="session")
def klue_ner_test(klue_ner_examples):
    by_id = {ex.id: ex for ex in klue_ner_examples}
    return [by_id[i] for i in json.loads(SPLIT.read_text(encoding="utf-8"))["test"]]


@pytest.fixture(scope="session")
def metaspace_backbone(tmp_path_factory, klue_ner_examples) -> str:
    texts = [ex.text for ex in klue_ner_examples[:1500]]
    return build_metaspace_backbone(tmp_path_factory.mktemp("metaspace-bert"), texts)


def random_tags(rng: random.Random, n: int, types=("PER", "LOC", "ORG")) -> list[str]:
    return [rng.choice(["O", "O", "O", *(f"{p}-{t}" for p in "BI" for t in types)]) for _ in range(n)]


def test_bio_to_spans_reads_as_seqeval_does():
    rng = random.Random(0)
    for _ in range(2000):  # ill-formed sequences too: I-X after O, I-X after B-Y, ...
        tags = random_tags(rng, rng.randint(0, 12))
        expected = [Span(start, end + 1, kind) for kind, start, end in get_entities(tags)]
        assert bio_to_spans(tags) == expected, tags


def test_spans_to_bio_round_trip():
    spans = [Span(0, 2, "PS"), Span(3, 4, "LC"), Span(4, 7, "LC")]
    tags = spans_to_bio(spans, 8)
    assert tags == ["B-PS", "I-PS", "O", "B-LC", "B-LC", "I-LC", "I-LC", "O"]
    assert bio_to_spans(tags) == spans
    with pytest.raises(ValueError, match="overlaps"):
        spans_to_bio([Span(0, 2, "A"), Span(1, 3, "B")], 4)


def test_char_and_unit_spans():
    text = "Empire State Building = ESB ."
    units = split_units(text, "word")
    unit_spans = [Span(0, 3, "location"), Span(4, 5, "location")]
    chars = unit_spans_to_chars(unit_spans, units)
    assert [text[s.start : s.end] for s in chars] == ["Empire State Building", "ESB"]
    assert char_spans_to_units(chars, units) == unit_spans


def test_alignment_of_metaspace_offsets_with_leading_space(metaspace_backbone):
    """The space before a word sits inside its `▁` token: it is bucket 0, the word's first letter bucket 1."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(metaspace_backbone)
    text = "경찰은 또 박씨의 딸"
    encoded = tokenizer(text, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"]
    assert any(a < b and text[a] == " " for a, b in offsets)  # the premise: a piece's offsets include its space
    chars = split_units(text, "char")
    tokens, buckets = align_units_to_tokens(text, chars, offsets)
    assert -1 not in tokens
    for (a, _), t, k in zip(chars, tokens, buckets, strict=True):
        start, end = offsets[t]
        assert start <= a < end  # every character is read from the token that holds it
        assert (k == 0) == (text[a] == " ")
    words = split_units(text, "word")
    word_tokens, word_buckets = align_units_to_tokens(text, words, offsets)
    assert set(word_buckets) == {1}  # a word is read at its first letter, never at the space before it
    assert [text[offsets[t][0] : offsets[t][1]].strip()[0] for t in word_tokens] == [text[a] for a, _ in words]


def test_alignment_of_wordpiece_offsets(tiny_backbone):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone)
    text = "Empire State Buildingzzq = ESB"
    offsets = tokenizer(text, return_offsets_mapping=True)["offset_mapping"]
    words = split_units(text, "word")
    tokens, buckets = align_units_to_tokens(text, words, offsets)
    assert [offsets[t][0] for t in tokens] == [a for a, _ in words]  # each word's first sub-token
    assert set(buckets) == {1}
    chars_tokens, _ = align_units_to_tokens(text, split_units(text, "char"), offsets)
    assert chars_tokens[6] == -1  # a space is in no WordPiece token
    truncated = tokenizer(text, return_offsets_mapping=True, truncation=True, max_length=4)["offset_mapping"]
    assert align_units_to_tokens(text, words, truncated)[0][-1] == -1  # cut off: not seen


@pytest.mark.parametrize("prefix", ["query: ", "passage:"])
def test_text_prefix_is_tokenized_but_read_by_no_unit(klue_ner_test, metaspace_backbone, tiny_backbone, prefix):
    """`text_prefix` goes before every text for the tokenizer; each unit still reads the token holding its own
    first character of the real text (never a token of the prefix), so gold spans come back exactly."""
    from transformers import AutoTokenizer

    wnut = load_token_examples(ROOT / "data/wnut17/emerging.dev.conll", "conll")[:200]
    for backbone, examples in ((metaspace_backbone, klue_ner_test[:200]), (tiny_backbone, wnut)):
        tokenizer = AutoTokenizer.from_pretrained(backbone)
        plain = encode_units(tokenizer, examples, Encoding(512))
        prefixed = encode_units(tokenizer, examples, Encoding(512, prefix))
        for ex, f, g in zip(examples, plain, prefixed, strict=True):
            encoded = tokenizer(prefix + ex.text, return_offsets_mapping=True)
            assert g["input_ids"] == encoded["input_ids"]
            assert [t == -1 for t in g["unit_token"]] == [t == -1 for t in f["unit_token"]]  # the same units seen
            for (a, b), t in zip(ex.units, g["unit_token"], strict=True):
                if t >= 0:
                    first = next((c for c in range(a, b) if not ex.text[c].isspace()), a)
                    start, end = encoded["offset_mapping"][t]
                    assert start <= first + len(prefix) < end, (ex.id, a)
        assert round_trip_failures(examples, tokenizer, 512, prefix) == []


def test_wordpiece_text_prefix_moves_tokens_only(tiny_backbone):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone)
    wnut = load_token_examples(ROOT / "data/wnut17/emerging.dev.conll", "conll")[:200]
    ids = tokenizer("query: ")["input_ids"][1:-1]  # the prefix's own tokens, after [CLS]
    shifted = [  # a prefix that ends in a space moves every unit's token by its length, nothing else
        {**f, "input_ids": f["input_ids"][:1] + ids + f["input_ids"][1:],
         "unit_token": [t + len(ids) if t >= 0 else -1 for t in f["unit_token"]]}
        for f in encode_units(tokenizer, wnut, Encoding(512))
    ]  # fmt: skip
    assert encode_units(tokenizer, wnut, Encoding(512, "query: ")) == shifted

    def seen(encoding: Encoding) -> int:
        return sum(t >= 0 for f in encode_units(tokenizer, wnut, encoding) for t in f["unit_token"])

    assert seen(Encoding(16, "query: ")) < seen(Encoding(16))  # the prefix counts towards max_length


def test_constrained_decoding_is_the_best_valid_path():
    names = ["O", "B-A", "I-A", "B-B", "I-B"]
    allowed, first = bio_transitions(names)
    rng = torch.Generator().manual_seed(0)
    for _ in range(30):
        log_probs = torch.randn(4, len(names), generator=rng).log_softmax(-1)
        path = constrained_decode(log_probs, allowed, first)
        valid = [
            p
            for p in itertools.product(range(len(names)), repeat=4)
            if first[p[0]] and all(allowed[a, b] for a, b in itertools.pairwise(p))
        ]
        best = max(valid, key=lambda p: sum(float(log_probs[u, t]) for u, t in enumerate(p)))
        assert tuple(path) == best
    # a lone I-A after O is what argmax gives; constrained decoding never does
    log_probs = torch.tensor([[0.9, 0.05, 0.01, 0.02, 0.02], [0.1, 0.2, 0.6, 0.05, 0.05]]).log()
    assert decode_units(log_probs, torch.tensor([True, True])) == [0, 2]
    assert decode_units(log_probs, torch.tensor([True, True]), (allowed, first)) == [0, 1]


def test_unseen_units_are_transparent():
    names = ["O", "B-A", "I-A"]
    # units 0..4, unit 2 unseen (a space a WordPiece tokenizer drops): the entity runs across it
    assert predicted_spans([1, 2, -1, 2, 0], names) == [Span(0, 4, "A")]
    assert predicted_spans([0, -1, 1], names) == [Span(2, 3, "A")]


def round_trip_failures(examples, tokenizer, max_length: int, text_prefix: str = "") -> list[str]:
    """Sentences whose gold spans do not come back from unit labels as the model sees them."""
    features = encode_units(tokenizer, examples, Encoding(max_length, text_prefix))
    names = ["O", *sorted({t for ex in examples for t in ex.tags if t != "O"})]
    index = {n: i for i, n in enumerate(names)}
    failures = []
    for ex, f in zip(examples, features, strict=True):
        gold = set(unit_spans_to_chars(bio_to_spans(ex.tags), ex.units))
        seen = [index[tag] if token >= 0 else -1 for tag, token in zip(ex.tags, f["unit_token"], strict=True)]
        decoded = set(unit_spans_to_chars(predicted_spans(seen, names), ex.units))
        if decoded != gold:
            failures.append(ex.id)
    return failures


def test_span_round_trip_klue_ner_test_split_metaspace(klue_ner_test, metaspace_backbone):
    from transformers import AutoTokenizer

    assert len(klue_ner_test) == 500
    tokenizer = AutoTokenizer.from_pretrained(metaspace_backbone)
    assert round_trip_failures(klue_ner_test, tokenizer, 256) == []


@pytest.mark.e2e
def test_span_round_trip_klue_ner_test_split_e5(klue_ner_test):
    """With the recipe's own tokenizer (e5-small trimmed to the train + val texts) and max_length: every gold
    entity of every test sentence comes back exactly, although ~9% of them start or end inside a token."""
    from n2m.shapes.n2n.data import TokenDataModule

    data = TokenDataModule(train=str(KLUE_NER), format="klue-ner", split_file=str(SPLIT), trim_vocab=True)
    tokenizer = data.tokenizer
    inside = 0
    for ex in klue_ner_test:
        offsets = tokenizer(ex.text, return_offsets_mapping=True)["offset_mapping"]
        edges = {c for a, b in offsets if b > a for c in (len(ex.text[a:b]) - len(ex.text[a:b].lstrip()) + a, b)}
        inside += sum(1 for s in bio_to_spans(ex.tags) if s.start not in edges or s.end not in edges)
    assert inside > 50  # the premise: plain token labels could not be exact
    assert round_trip_failures(klue_ner_test, tokenizer, 128) == []
