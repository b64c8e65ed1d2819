"""Build a backbone encoder from a local HF folder (pretrained) or from its config alone (for loading exports)."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel


def build_encoder(source: str | Path | PretrainedConfig, pretrained: bool = True) -> PreTrainedModel:
    """An encoder without a pooler: we pool ourselves, and unused pooler weights break DDP."""
    try:
        if pretrained:
            return AutoModel.from_pretrained(source, add_pooling_layer=False)
        config = source if isinstance(source, PretrainedConfig) else AutoConfig.from_pretrained(source)
        return AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:  # model classes that have no pooler to leave out
        if pretrained:
            return AutoModel.from_pretrained(source)
        config = source if isinstance(source, PretrainedConfig) else AutoConfig.from_pretrained(source)
        return AutoModel.from_config(config)
