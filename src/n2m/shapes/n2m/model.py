"""Encoder-decoder models for N2M, built three ways, all ending as a Hugging Face model with `generate()`.

- `warm_start` (Rothe et al. 2020, "Leveraging pre-trained checkpoints for sequence generation tasks"):
  encoder and decoder both start from the same BERT-style checkpoint (e.g. e5-small). The decoder gets
  causal self-attention and new cross-attention (randomly initialized as in the paper, or, with
  `cross_attention_init: self_attention`, copied from the same layer's self-attention); its output
  layer is tied to its input embeddings. `tie_encoder_decoder` shares every encoder weight with the decoder (Rothe's
  BERTShare); `encoder_layers` / `decoder_layers` keep only the first k layers of the checkpoint,
  which is what makes CPU training affordable.
- `scratch`: the same BERT-style encoder-decoder, randomly initialized at a small size (`ScratchSize`),
  over a tokenizer trained on the recipe's training text (`n2m.shapes.n2m.data.train_tokenizer`).
- `pretrained`: any Hugging Face seq2seq model (T5, BART, Marian, ...) from a local folder or a hub.

A model whose inputs are images (image captioning) is a `VisionEncoderDecoderModel` built in
`n2m.shapes.n2m.vision`; `Seq2SeqModel` trains, saves and loads both kinds alike.

A decoder sees `decoder_start` then the target; it learns to end with `eos`. For BERT-style models
those are the tokenizer's `[CLS]`/`<s>` and `[SEP]`/`</s>`, as in Rothe et al.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    BertConfig,
    EncoderDecoderModel,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from n2m.core.card import ModelCard
from n2m.shapes.n2m.packed import IGNORE, packable, packed_logits
from n2m.shapes.n2m.vision import VisionSize, build_captioner, is_captioner, load_captioner
from n2m.shapes.n2m.warm_start import layer_count, warm_decoder

Architecture = Literal["warm_start", "scratch", "pretrained"]
CrossAttentionInit = Literal["random", "self_attention"]
# the parts a warm start adds to the checkpoint (randomly initialized): trained at the task's `head_lr`
NEW_IN_WARM_START = ("crossattention", "cls.predictions.transform", "cls.predictions.bias", "enc_to_dec_proj")


@dataclass
class ScratchSize:
    """Size of a from-scratch Transformer (BERT-style post-LN blocks on both sides)."""

    hidden_size: int = 256
    encoder_layers: int = 3
    decoder_layers: int = 3
    heads: int = 4
    ffn_size: int = 1024
    max_positions: int = 512
    dropout: float = 0.1


@dataclass(frozen=True)
class SpecialIds:
    decoder_start: int
    eos: int
    pad: int


def special_ids(architecture: Architecture, tokenizer: PreTrainedTokenizerBase, folder: str | Path) -> SpecialIds:
    """Start, end and padding ids: the model's own for `pretrained`, `[CLS]/[SEP]` (`<s>/</s>`) otherwise."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    if architecture == "pretrained":
        config = AutoConfig.from_pretrained(folder)
        start = getattr(config, "decoder_start_token_id", None)
        eos = getattr(config, "eos_token_id", None)
        eos = eos if eos is not None else tokenizer.eos_token_id
        if start is None:  # e.g. a config that leaves it to generation_config: BART-like models start with eos
            start = getattr(config, "bos_token_id", None) if getattr(config, "bos_token_id", None) is not None else eos
        return SpecialIds(int(start), int(eos), int(config.pad_token_id if config.pad_token_id is not None else pad))
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    if start is None or eos is None:
        raise ValueError(
            f"the tokenizer in {folder} has no start ([CLS] or <s>) or end ([SEP] or </s>) token, "
            "which a BERT-style decoder needs"
        )
    return SpecialIds(int(start), int(eos), int(pad))


def _warm_start_parts(
    folder: str | Path, encoder_layers: int | None, decoder_layers: int | None, pretrained: bool
) -> tuple[PreTrainedModel, PreTrainedModel]:
    enc_over = layer_count(folder, encoder_layers)
    if pretrained:
        encoder = AutoModel.from_pretrained(folder, add_pooling_layer=False, **enc_over)
    else:
        encoder = AutoModel.from_config(AutoConfig.from_pretrained(folder, **enc_over), add_pooling_layer=False)
    return encoder, warm_decoder(folder, decoder_layers, pretrained)


def _scratch_parts(vocab_size: int, pad: int, size: ScratchSize) -> tuple[PreTrainedModel, PreTrainedModel]:
    common = dict(
        vocab_size=vocab_size,
        hidden_size=size.hidden_size,
        num_attention_heads=size.heads,
        intermediate_size=size.ffn_size,
        max_position_embeddings=size.max_positions,
        hidden_dropout_prob=size.dropout,
        attention_probs_dropout_prob=size.dropout,
        pad_token_id=pad,
        type_vocab_size=1,
    )
    encoder = AutoModel.from_config(
        BertConfig(num_hidden_layers=size.encoder_layers, **common), add_pooling_layer=False
    )
    decoder_config = BertConfig(
        num_hidden_layers=size.decoder_layers, is_decoder=True, add_cross_attention=True, **common
    )
    return encoder, AutoModelForCausalLM.from_config(decoder_config)


def init_cross_attention_from_self_attention(model: EncoderDecoderModel) -> int:
    """Start each decoder layer's cross-attention as a copy of its (pretrained) self-attention, so attending
    to the encoder's states of the same checkpoint is meaningful from the first step. Returns the layer count."""
    layers = model.decoder.bert.encoder.layer
    for layer in layers:
        layer.crossattention.load_state_dict(layer.attention.state_dict())
    return len(layers)


def tie_encoder_to_decoder(model: EncoderDecoderModel) -> int:
    """Share the encoder's weights with the decoder wherever both have them (embeddings, self-attention,
    feed-forward of the first min(layers) layers); cross-attention and the LM head's transform stay the
    decoder's own. Parameters are shared (one tensor), so the optimizer sees each once. Returns how many."""
    enc = dict(model.encoder.named_parameters())
    output = model.decoder.get_output_embeddings()
    tied_output = output is not None and output.weight is model.decoder.get_input_embeddings().weight
    shared = 0
    for name, param in list(model.decoder.named_parameters()):
        key = name.removeprefix("bert.")  # BertLMHeadModel keeps its BertModel under `bert`
        if "crossattention" in key or key == name or key not in enc or enc[key].shape != param.shape:
            continue
        owner = model.decoder.get_submodule(name.rsplit(".", 1)[0])
        setattr(owner, name.rsplit(".", 1)[1], enc[key])
        shared += 1
    if tied_output:  # the LM head was tied to the decoder's own input embeddings: follow them to the encoder's
        output.weight = model.decoder.get_input_embeddings().weight
    return shared


def build_seq2seq(
    architecture: Architecture,
    folder: str | Path,
    tokenizer: PreTrainedTokenizerBase,
    *,
    encoder_layers: int | None = None,
    decoder_layers: int | None = None,
    tie_encoder_decoder: bool = False,
    cross_attention_init: CrossAttentionInit = "random",
    scratch: ScratchSize | None = None,
    pretrained: bool = True,
) -> PreTrainedModel:
    """The HF model for an architecture. `folder` holds the checkpoint (warm start, pretrained) or just the
    tokenizer (scratch). `pretrained=False` builds the same architecture with fresh weights, to load a
    trained state dict into (export)."""
    ids = special_ids(architecture, tokenizer, folder)
    if architecture == "pretrained":
        if pretrained:
            return AutoModelForSeq2SeqLM.from_pretrained(folder)
        return AutoModelForSeq2SeqLM.from_config(AutoConfig.from_pretrained(folder))
    if architecture == "warm_start":
        encoder, decoder = _warm_start_parts(folder, encoder_layers, decoder_layers, pretrained)
    elif architecture == "scratch":
        encoder, decoder = _scratch_parts(len(tokenizer), ids.pad, scratch or ScratchSize())
    else:
        raise ValueError(f"unknown architecture {architecture!r}: use warm_start, scratch or pretrained")
    model = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    for config in (model.config, model.generation_config):
        config.decoder_start_token_id = ids.decoder_start
        config.bos_token_id = ids.decoder_start
        config.eos_token_id = ids.eos
        config.pad_token_id = ids.pad
    model.config.vocab_size = model.config.decoder.vocab_size
    if cross_attention_init == "self_attention" and architecture == "warm_start" and pretrained:
        init_cross_attention_from_self_attention(model)
    if tie_encoder_decoder:
        tie_encoder_to_decoder(model)
    return model


class Seq2SeqModel(nn.Module):
    """The HF encoder-decoder, with the teacher-forced loss n2m trains with (label smoothing, padding ignored).

    `encoder` is exposed so `BaseTask`'s optimizer and embedding freezing find it, whatever the HF class. An
    export is the HF model's own folder (`AutoModelForSeq2SeqLM.from_pretrained` loads it); the model card
    (`settings`: architecture, layer counts, scratch sizes) says how to rebuild the architecture.
    """

    def __init__(self, net: PreTrainedModel, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.net = net
        self.label_smoothing = label_smoothing

    @classmethod
    def from_backbone(cls, folder: Path, card: ModelCard) -> Seq2SeqModel:
        """The card's architecture with fresh weights, to load a checkpoint's into (export). Built untied: a tied
        model's state dict holds every shared tensor under both names, so loading it into the untied architecture
        gives the same function as separate tensors, which any HF install can load."""
        settings = card.settings
        architecture = settings["architecture"]
        if is_captioner(card):
            tokenizer = AutoTokenizer.from_pretrained(folder)
            net = build_captioner(
                architecture,
                folder,
                tokenizer,
                special_ids(architecture, tokenizer, folder),
                settings["image"]["size"],
                vision=VisionSize(**(settings.get("vision") or {})),
                image_encoder=settings.get("image_encoder"),
                decoder_layers=settings.get("decoder_layers"),
                pretrained=False,
            )
            return cls(net)
        net = build_seq2seq(
            architecture,
            folder,
            AutoTokenizer.from_pretrained(folder),
            encoder_layers=settings.get("encoder_layers"),
            decoder_layers=settings.get("decoder_layers"),
            scratch=ScratchSize(**(settings.get("scratch") or {})),
            pretrained=False,
        )
        if architecture == "pretrained" and Path(folder, "generation_config.json").is_file():
            net.generation_config = GenerationConfig.from_pretrained(folder)  # the model's own decoding defaults
        return cls(net)

    def save(self, folder: Path) -> None:
        self.net.save_pretrained(folder)
        for weights in Path(folder).glob("*.safetensors"):  # written 0600; an export is meant to be shared
            weights.chmod(0o644)

    @classmethod
    def load(cls, folder: Path, card: ModelCard) -> Seq2SeqModel:
        if is_captioner(card):
            return cls(load_captioner(folder))
        return cls(AutoModelForSeq2SeqLM.from_pretrained(folder))

    @property
    def encoder(self) -> nn.Module:
        return self.net.get_encoder()

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits `(B, T, V)` for each target position, given the target so far (teacher forcing)."""
        decoder_input_ids = self.net.prepare_decoder_input_ids_from_labels(labels=batch["labels"])
        out = self.net(
            **source_inputs(batch),
            decoder_input_ids=decoder_input_ids,
            # input j is the start token (j = 0) or label j - 1: real exactly where label j is (padding is at the end)
            decoder_attention_mask=(batch["labels"] != -100).long(),
            use_cache=False,
        )
        return out.logits

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over logits `(..., V)` and their labels `(...)`, padding (-100) ignored."""
        return nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE,
            label_smoothing=self.label_smoothing,
        )  # fmt: skip

    def batch_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The teacher-forced loss of a batch: over its real target tokens only where the decoder allows it
        (`n2m.shapes.n2m.packed`: the same value, without computing the padding), else from `forward`'s logits."""
        labels = batch["labels"]
        if not packable(self.net, labels):
            return self.loss(self(batch), labels)
        return self.loss(packed_logits(self.net, source_inputs(batch), labels), labels[labels != IGNORE])


def source_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What the encoder reads of a batch: `pixel_values` (images) or `input_ids` and `attention_mask` (texts)."""
    if "pixel_values" in batch:
        return {"pixel_values": batch["pixel_values"]}
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


Model = Seq2SeqModel
