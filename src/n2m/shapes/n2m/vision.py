"""Image captioning models for N2M: a Hugging Face `VisionEncoderDecoderModel` (an image encoder, a text decoder,
cross-attention between them), built two ways.

- `warm_start`: the image encoder is a small ViT or Swin built from a config (`VisionSize`: no vision weights can
  be had offline), or any local Hugging Face vision encoder folder (`image_encoder`); the text decoder starts from
  the BERT-style checkpoint (e5-small) as N2M's text warm start does (`is_decoder`, new `add_cross_attention`,
  Rothe et al. 2020), its first `decoder_layers` layers kept. When the widths differ, HF adds `enc_to_dec_proj`
  (new, at `head_lr`).
- `pretrained`: any local `VisionEncoderDecoderModel` folder (its tokenizer beside it).

A model of a card whose `inputs` are `["image"]` is a captioner (`is_captioner`).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    GenerationConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    SwinConfig,
    VisionEncoderDecoderModel,
    ViTConfig,
)
from transformers.utils import logging as hf_logging

from n2m.core.card import ModelCard
from n2m.core.encoder import build_encoder
from n2m.shapes.n2m.conv_stem import ConvStemViTConfig, StemNorm
from n2m.shapes.n2m.warm_start import warm_decoder

IMAGE_INPUTS = ["image"]


@dataclass
class VisionSize:
    """An image encoder built from scratch, of one of two kinds.

    - `vit`: ViT, pre-LN blocks over `patch_size` patches. `hidden_size` 384 matches e5-small's width, so
      cross-attention needs no projection. `stem: conv` computes each patch's token with stride-2 convolutions
      instead of one linear map, normalized by `stem_norm` (`n2m.shapes.n2m.conv_stem`: a from-scratch
      captioner learns to use the image).
    - `swin`: Swin Transformer (Liu et al. 2021), attention within `window` × `window` patches of `patch_size`
      pixels, in `stages` stages that each halve the grid and double the width and heads (`hidden_size`, `heads`:
      the first stage's; `layers`: blocks per stage; `ffn_size` / `hidden_size`: the MLP ratio). Its local windows
      and merging give it a convolution's locality, which a from-scratch encoder on a few thousand images lacks
      as a ViT; it is the image encoder of Donut's `VisionEncoderDecoderModel`.
    """

    kind: Literal["vit", "swin"] = "vit"
    hidden_size: int = 384
    layers: int = 4
    heads: int = 6
    ffn_size: int = 1536
    patch_size: int = 16
    dropout: float = 0.0
    stages: int = 3  # swin
    window: int = 6  # swin
    stem: Literal["patch", "conv"] = "patch"  # vit
    stem_norm: StemNorm = "batch"  # vit, stem: conv


def is_captioner(card: ModelCard | dict[str, Any]) -> bool:
    inputs = card.inputs if isinstance(card, ModelCard) else card.get("inputs")
    return list(inputs or []) == IMAGE_INPUTS


def image_encoder_from_scratch(size: VisionSize, image_size: int) -> PreTrainedModel:
    """The `VisionSize` encoder with fresh weights, for `image_size`-pixel images."""
    grid = size.patch_size * 2 ** (size.stages - 1 if size.kind == "swin" else 0)  # the coarsest grid's cell
    if image_size % grid:
        raise ValueError(f"image size {image_size} is not a multiple of {grid} pixels, the side of the "
                         f"{size.kind} encoder's coarsest patch")  # fmt: skip
    if size.stem not in ("patch", "conv") or (size.stem == "conv" and size.kind != "vit"):
        raise ValueError(f"`vision.stem` is `patch`, or `conv` for a `vit`; not {size.stem!r} for {size.kind!r}")
    if size.kind == "vit":
        conv = {"stem_norm": size.stem_norm} if size.stem == "conv" else {}
        config: PretrainedConfig = (ConvStemViTConfig if conv else ViTConfig)(
            **conv,
            image_size=image_size,
            patch_size=size.patch_size,
            hidden_size=size.hidden_size,
            num_hidden_layers=size.layers,
            num_attention_heads=size.heads,
            intermediate_size=size.ffn_size,
            hidden_dropout_prob=size.dropout,
            attention_probs_dropout_prob=size.dropout,
        )
    elif size.kind == "swin":
        config = SwinConfig(
            image_size=image_size,
            patch_size=size.patch_size,
            embed_dim=size.hidden_size,
            depths=[size.layers] * size.stages,
            num_heads=[size.heads * 2**i for i in range(size.stages)],
            window_size=size.window,
            mlp_ratio=size.ffn_size / size.hidden_size,
            hidden_dropout_prob=size.dropout,
            attention_probs_dropout_prob=size.dropout,
        )
    else:
        raise ValueError(f"`vision.kind` is `vit` or `swin`, not {size.kind!r}")
    return build_encoder(config, pretrained=False)


def check_image_size(net: VisionEncoderDecoderModel, image_size: int) -> None:
    """The data's image size must be the one the encoder was built for (ViT position embeddings are per patch)."""
    expected = getattr(net.config.encoder, "image_size", None)
    if isinstance(expected, list | tuple):
        expected = expected[0]
    if expected is not None and int(expected) != image_size:
        raise ValueError(f"the image encoder reads {expected}-pixel images; set `data.images.size: {expected}`")


def build_captioner(
    architecture: str,
    folder: str | Path,
    tokenizer: PreTrainedTokenizerBase,
    special: Any,
    image_size: int,
    *,
    vision: VisionSize | None = None,
    image_encoder: str | None = None,
    decoder_layers: int | None = None,
    pretrained: bool = True,
) -> VisionEncoderDecoderModel:
    """The captioner for an architecture; `special` holds the decoder's start, end and padding ids. `folder` is
    the text checkpoint (warm start) or the whole model (pretrained). `pretrained=False`: the same architecture
    with fresh weights, to load trained ones into (export)."""
    if architecture == "pretrained":
        net = load_captioner(folder) if pretrained else _fresh_from_config(folder)
        if Path(folder, "generation_config.json").is_file():
            net.generation_config = GenerationConfig.from_pretrained(folder)  # the model's own decoding defaults
        set_special_ids(net, special, only_missing=True)
        check_image_size(net, image_size)
        return net
    if architecture != "warm_start":
        raise ValueError(f"image captioning is built by `warm_start` or `pretrained`, not {architecture!r}")
    if image_encoder and pretrained:
        encoder = build_encoder(image_encoder, pretrained=True)
    elif image_encoder:
        encoder = build_encoder(AutoConfig.from_pretrained(image_encoder), pretrained=False)
    else:
        encoder = image_encoder_from_scratch(vision or VisionSize(), image_size)
    net = VisionEncoderDecoderModel(encoder=encoder, decoder=warm_decoder(folder, decoder_layers, pretrained))
    set_special_ids(net, special)
    net.config.vocab_size = net.config.decoder.vocab_size
    check_image_size(net, image_size)
    return net


def set_special_ids(net: VisionEncoderDecoderModel, special: Any, only_missing: bool = False) -> None:
    """Start, end and padding ids in the config and in the generation config (`generate` reads the latter);
    `only_missing`: a pretrained folder's own ids stay."""
    ids = {"decoder_start_token_id": special.decoder_start, "bos_token_id": special.decoder_start,
           "eos_token_id": special.eos, "pad_token_id": special.pad}  # fmt: skip
    for config in (net.config, net.generation_config):
        for key, value in ids.items():
            if not only_missing or getattr(config, key, None) is None:
                setattr(config, key, value)


@contextmanager
def _quiet_loading():
    """HF reports the encoder's pooler as newly initialized on every load: we never use it, so say nothing."""
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity(logging.ERROR)
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _drop_pooler(net: VisionEncoderDecoderModel) -> VisionEncoderDecoderModel:
    if getattr(net.encoder, "pooler", None) is not None:
        net.encoder.pooler = None  # unused by captioning; its random weights would only be saved again
    return net


def load_captioner(folder: str | Path) -> VisionEncoderDecoderModel:
    """A saved `VisionEncoderDecoderModel` folder (an n2m export, or any other)."""
    with _quiet_loading():
        return _drop_pooler(VisionEncoderDecoderModel.from_pretrained(folder))


def _fresh_from_config(folder: str | Path) -> VisionEncoderDecoderModel:
    config = AutoConfig.from_pretrained(folder)
    encoder = build_encoder(config.encoder, pretrained=False)
    decoder = AutoModelForCausalLM.from_config(config.decoder)
    return VisionEncoderDecoderModel(config=config, encoder=encoder, decoder=decoder)
