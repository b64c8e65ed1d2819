"""Warm starts from a BERT-style checkpoint: its first N layers, and the checkpoint as a causal text decoder
with new cross-attention (the text-to-text model's decoder and the captioner's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel


def layer_count(folder: str | Path, layers: int | None) -> dict[str, Any]:
    """Config overrides that keep the first `layers` layers of the checkpoint (or all of them)."""
    if layers is None:
        return {}
    available = AutoConfig.from_pretrained(folder).num_hidden_layers
    if not 1 <= layers <= available:
        raise ValueError(f"asked for {layers} layers but {folder} has {available}")
    return {"num_hidden_layers": layers}


def warm_decoder(folder: str | Path, decoder_layers: int | None, pretrained: bool) -> PreTrainedModel:
    """The checkpoint as a causal decoder with (new) cross-attention, its first `decoder_layers` layers; with
    `pretrained` False, only its configuration (weights come from a saved model)."""
    over = {**layer_count(folder, decoder_layers), "is_decoder": True, "add_cross_attention": True}
    if pretrained:
        return AutoModelForCausalLM.from_pretrained(folder, **over)
    return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder, **over))
