"""`n2m export`: a checkpoint → a self-contained model folder (weights, config, tokenizer, `n2m.json`), for every
shape: the task wrote its card and backbone folder into the checkpoint, and the shape's model saves itself."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

from n2m.core.card import ModelCard
from n2m.registry import get_shape

CARD_KEY = "n2m_card"  # the checkpoint's model card (a plain dict)
BACKBONE_KEY = "n2m_backbone_dir"  # the folder the backbone (and tokenizer) was loaded from


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint without running pickled code (`weights_only=True`), memory-mapped: the optimizer
    state it also holds is never read into memory."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as err:
        raise ValueError(f"{path} holds objects that cannot be loaded safely: {err}") from None


def model_weights(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The task's `model.*` weights, named as the model names them."""
    return {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}


def best_validation(checkpoint: dict[str, Any]) -> dict[str, float]:
    """The monitored validation score recorded in the checkpoint (ensembles can weight members by it)."""
    for key, state in checkpoint.get("callbacks", {}).items():
        if key.startswith("ModelCheckpoint") and state.get("best_model_score") is not None:
            return {state["monitor"]: float(state["best_model_score"])}
    return {}


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path) -> Path:
    ckpt = read_checkpoint(checkpoint)
    if CARD_KEY not in ckpt:
        raise ValueError(
            f"{checkpoint} has no model card: it was written by n2m before 0.2; export it with that version"
        )
    card = ModelCard.from_dict(ckpt[CARD_KEY])
    backbone = Path(ckpt[BACKBONE_KEY])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = get_shape(card.shape).part("model").from_backbone(backbone, card)
    model.load_state_dict(model_weights(ckpt), strict=True)
    model.save(out)
    AutoTokenizer.from_pretrained(backbone).save_pretrained(out)
    card.provenance["validation"] = best_validation(ckpt)
    card.save(out)
    return out
