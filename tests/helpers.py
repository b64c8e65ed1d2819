"""Test-only helpers: callbacks importable by class path from the CLI (`helpers.CrashAtStep`), a tiny backbone
with an e5-style tokenizer, and the bundled data's TSV rows."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback


class CrashAtStep(Callback):
    """Raise at a given global step, as a killed job would stop: mid-epoch, no checkpoint of its own."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # type: ignore[override]
        if trainer.global_step >= self.step:
            raise RuntimeError(f"simulated crash at step {trainer.global_step}")


def build_metaspace_backbone(folder: Path, texts: list[str], vocab_size: int = 2000, words: Sequence[str] = ()) -> str:
    """A tiny random BERT with an XLM-R-style tokenizer (Unigram + Metaspace, like e5's) trained on `texts`
    (or, given `words`, made of `▁word` pieces and single characters): its pieces cross entity edges
    (`▁박씨`, `(3`) and its offsets include the space before a word."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    if words:
        chars = sorted({c for t in texts for c in t if not c.isspace()} | {"▁"})
        vocab = [(s, 0.0) for s in specials] + [(f"▁{w}", -1.0) for w in words] + [(c, -5.0) for c in chars]
        tok = Tokenizer(models.Unigram(vocab, unk_id=3))
    else:
        tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    if not words:
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>")
        tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        cls_token="<s>", sep_token="</s>",
    )  # fmt: skip
    fast.save_pretrained(folder)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=256, pad_token_id=1,
    )  # fmt: skip
    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    return str(folder)


def read_tsv(path: Path) -> list[dict[str, str]]:
    """A bundled TSV file's rows (KorSTS, KorNLI), quotes read as plain text as the readers do."""
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
