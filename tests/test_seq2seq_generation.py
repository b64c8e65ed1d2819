"""Generation correctness on a tiny random encoder-decoder (warm-started from the tiny BERT): greedy vs beam 1,
end-of-sequence and max_new_tokens, padding invariance, sampling, per-call options, streaming, weight tying."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from n2m.core.card import Encoding
from n2m.shapes.n2m.encoding import encode_sources, pad_sources
from n2m.shapes.n2m.generation import GenerationOptions, decode, generate_ids, stream_text
from n2m.shapes.n2m.model import build_seq2seq

TEXTS = [
    "hello world",
    "a much longer sentence, with many more words in it, so that the others get padded",
    "short",
    "the cat sat on the mat",
    "numbers one two three",
]


@pytest.fixture(scope="module")
def tiny(tiny_backbone):
    """A random 2+2-layer encoder-decoder whose cross-attention is scaled up, so its output depends on its
    input (with the standard small init every input gives the same text, and padding tests would be vacuous)."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone)
    torch.manual_seed(0)
    model = build_seq2seq("warm_start", tiny_backbone, tokenizer).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "crossattention" in name and param.dim() > 1:
                param.normal_(0, 0.3)
    return model, tokenizer


def batch_of(tokenizer, texts):
    return pad_sources(encode_sources(tokenizer, texts, Encoding(48)), tokenizer.pad_token_id)


def run(model, tokenizer, texts, **options):
    batch = batch_of(tokenizer, texts)
    return generate_ids(model, batch["input_ids"], batch["attention_mask"], GenerationOptions(**options))


def test_outputs_depend_on_the_input(tiny):
    model, tokenizer = tiny
    outputs = run(model, tokenizer, TEXTS, max_new_tokens=8)
    assert len({tuple(o) for o in outputs}) >= 4  # otherwise the tests below prove nothing


def test_beam_search_with_one_beam_is_greedy(tiny):
    model, tokenizer = tiny
    greedy = run(model, tokenizer, TEXTS, max_new_tokens=10)
    beam1 = run(model, tokenizer, TEXTS, max_new_tokens=10, num_beams=1, length_penalty=2.0)
    assert beam1 == greedy
    beam3 = run(model, tokenizer, TEXTS, max_new_tokens=10, num_beams=3)
    assert beam3 != greedy  # a real search finds other sequences on some inputs


def test_respects_max_new_tokens(tiny):
    model, tokenizer = tiny
    for limit in (1, 3, 7):
        for row in run(model, tokenizer, TEXTS, max_new_tokens=limit) + run(
            model, tokenizer, TEXTS, max_new_tokens=limit, num_beams=3
        ):
            assert 1 <= len(row) <= limit


def test_stops_at_end_of_sequence(tiny):
    """Make the third token greedy decoding produces for an input its end-of-sequence: it must stop right there,
    the others in the batch go on, and nothing after EOS (the batch's padding) comes back."""
    model, tokenizer = tiny
    free = run(model, tokenizer, TEXTS, max_new_tokens=10)
    eos = free[0][2]
    assert eos not in free[0][:2]
    original = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = eos
    try:
        stopped = run(model, tokenizer, TEXTS, max_new_tokens=10)
    finally:
        model.generation_config.eos_token_id = original
    assert stopped[0] == free[0][:3]
    for before, after in zip(free, stopped, strict=True):
        cut = before.index(eos) + 1 if eos in before else len(before)
        assert after == before[:cut]
    assert any(len(row) == 10 for row in stopped)  # rows without that token still ran to the limit
    real_eos = original if isinstance(original, int) else original[0]
    assert decode(tokenizer, [*free[0][:2], real_eos]) == decode(tokenizer, free[0][:2])  # EOS is not text


@pytest.mark.parametrize("options", [{}, {"num_beams": 3}, {"num_beams": 2, "no_repeat_ngram_size": 2}])
def test_batch_equals_one_by_one(tiny, options):
    model, tokenizer = tiny
    together = run(model, tokenizer, TEXTS, max_new_tokens=6, **options)
    alone = [run(model, tokenizer, [text], max_new_tokens=6, **options)[0] for text in TEXTS]
    assert together == alone


def test_no_repeat_ngram(tiny):
    model, tokenizer = tiny
    plain = run(model, tokenizer, TEXTS, max_new_tokens=12)

    def repeats(row, n):
        grams = [tuple(row[i : i + n]) for i in range(len(row) - n + 1)]
        return len(grams) != len(set(grams))

    assert any(repeats(row, 2) for row in plain)  # the random model does repeat itself ...
    for row in run(model, tokenizer, TEXTS, max_new_tokens=12, no_repeat_ngram_size=2):
        assert not repeats(row, 2)  # ... and is stopped from it


def test_sampling_is_seeded_and_varies(tiny):
    model, tokenizer = tiny
    sample = dict(max_new_tokens=8, do_sample=True, temperature=1.5, top_p=0.95)
    a = run(model, tokenizer, TEXTS, seed=1, **sample)
    b = run(model, tokenizer, TEXTS, seed=1, **sample)
    c = run(model, tokenizer, TEXTS, seed=2, **sample)
    assert a == b and a != c
    nucleus_of_one = run(model, tokenizer, TEXTS, seed=3, max_new_tokens=8, do_sample=True, top_p=1e-9)
    assert nucleus_of_one == run(model, tokenizer, TEXTS, max_new_tokens=8)  # top-p keeps only the best: greedy


def test_options_override_and_validation():
    options = GenerationOptions(num_beams=4, max_new_tokens=32)
    changed = options.override(num_beams=1, top_p=None)
    assert (changed.num_beams, changed.max_new_tokens, options.num_beams) == (1, 32, 4)
    with pytest.raises(ValueError, match="unknown generation option"):
        options.override(beams=2)
    with pytest.raises(ValueError, match="top_p"):
        GenerationOptions(top_p=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        GenerationOptions(max_new_tokens=0)


@pytest.mark.parametrize("options", [{}, {"num_beams": 3}, {"do_sample": True, "seed": 4, "top_p": 0.9}])
def test_stream_yields_pieces_that_join_to_the_output(tiny, options):
    model, tokenizer = tiny
    batch = batch_of(tokenizer, TEXTS[:1])
    opts = GenerationOptions(max_new_tokens=12, **options)
    pieces = list(stream_text(model, tokenizer, batch["input_ids"], batch["attention_mask"], opts))
    full = decode(tokenizer, generate_ids(model, batch["input_ids"], batch["attention_mask"], opts)[0])
    assert "".join(pieces) == full
    if not options.get("num_beams"):
        assert len(pieces) > 3  # token by token, not the whole text at once


def test_tied_encoder_decoder_shares_weights(tiny_backbone):
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone)
    untied = build_seq2seq("warm_start", tiny_backbone, tokenizer)
    tied = build_seq2seq("warm_start", tiny_backbone, tokenizer, tie_encoder_decoder=True)
    enc_emb = tied.encoder.get_input_embeddings().weight
    assert tied.decoder.get_input_embeddings().weight is enc_emb
    assert tied.decoder.get_output_embeddings().weight is enc_emb  # the LM head follows the shared embeddings
    layer_e, layer_d = tied.encoder.encoder.layer[0], tied.decoder.bert.encoder.layer[0]
    assert layer_d.attention.self.query.weight is layer_e.attention.self.query.weight
    assert layer_d.crossattention.self.query.weight is not layer_e.attention.self.query.weight
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(tied) < 0.6 * count(untied)


def test_decoder_layers_take_the_first_layers_of_the_checkpoint(tiny_backbone):
    from transformers import AutoModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone)
    model = build_seq2seq("warm_start", tiny_backbone, tokenizer, encoder_layers=1, decoder_layers=1)
    source = AutoModel.from_pretrained(tiny_backbone)
    assert len(model.encoder.encoder.layer) == 1 and len(model.decoder.bert.encoder.layer) == 1
    first = source.encoder.layer[0].attention.self.query.weight
    assert torch.equal(model.encoder.encoder.layer[0].attention.self.query.weight, first)
    assert torch.equal(model.decoder.bert.encoder.layer[0].attention.self.query.weight, first)
    assert model.config.decoder.is_decoder and model.config.decoder.add_cross_attention
    with pytest.raises(ValueError, match="asked for 5 layers"):
        build_seq2seq("warm_start", tiny_backbone, tokenizer, decoder_layers=5)


def test_cross_attention_can_start_as_a_copy_of_self_attention(tiny_backbone):
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone)
    model = build_seq2seq("warm_start", tiny_backbone, tokenizer, cross_attention_init="self_attention")
    random = build_seq2seq("warm_start", tiny_backbone, tokenizer)
    for layer, other in zip(model.decoder.bert.encoder.layer, random.decoder.bert.encoder.layer, strict=True):
        assert torch.equal(layer.crossattention.self.key.weight, layer.attention.self.key.weight)
        assert layer.crossattention.self.key.weight is not layer.attention.self.key.weight  # a copy, not shared
        assert not torch.equal(other.crossattention.self.key.weight, other.attention.self.key.weight)
