"""Build a backbone encoder from a local HF folder (pretrained) or from its config alone (for loading exports)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel


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
