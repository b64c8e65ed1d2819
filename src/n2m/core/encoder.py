"""Backbone encoders and what every encoder-based model shares: building, pooling, saving and loading itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel

from n2m.core.card import ModelCard

Pooling = Literal["cls", "mean"]
WEIGHTS_FILE = "model.safetensors"


def build_encoder(
    source: str | Path | PretrainedConfig, pretrained: bool = True, overrides: dict[str, Any] | None = None
) -> PreTrainedModel:
    """An encoder without a pooler: we pool ourselves, and unused pooler weights break DDP.

    `overrides` replace entries of the backbone's config (e.g. `attention_probs_dropout_prob: 0.0`); an entry
    the config does not have is an error, not a silent no-op."""
    config = source if isinstance(source, PretrainedConfig) else AutoConfig.from_pretrained(source)
    for key, value in (overrides or {}).items():
        if not hasattr(config, key):
            raise ValueError(f"backbone_config: {type(config).__name__} has no setting {key!r}")
        setattr(config, key, value)
    try:
        if pretrained:
            return AutoModel.from_pretrained(source, config=config, add_pooling_layer=False)
        return AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:  # model classes that have no pooler to leave out
        return AutoModel.from_pretrained(source, config=config) if pretrained else AutoModel.from_config(config)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: Pooling) -> torch.Tensor:
    """Sentence vectors from token states: the first token's, or the mean over real tokens."""
    if how == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class EncoderModel(nn.Module):
    """An `encoder` (a Hugging Face backbone) plus a head. Saves itself as the backbone's `config.json` and one
    safetensors file, and loads back from them with what the model card says."""

    encoder: PreTrainedModel

    @classmethod
    def from_config(cls, config: PretrainedConfig, card: ModelCard) -> EncoderModel:
        """The architecture with fresh weights, to load trained ones into."""
        raise NotImplementedError

    @classmethod
    def from_backbone(cls, folder: Path, card: ModelCard) -> EncoderModel:
        return cls.from_config(AutoConfig.from_pretrained(folder), card)

    def save(self, folder: Path) -> None:
        self.encoder.config.save_pretrained(folder)
        state = {k: v.contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
        (folder / WEIGHTS_FILE).chmod(0o644)  # safetensors writes 0600; an export is meant to be shared

    @classmethod
    def load(cls, folder: Path, card: ModelCard) -> EncoderModel:
        model = cls.from_config(AutoConfig.from_pretrained(folder), card)
        model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
        return model
