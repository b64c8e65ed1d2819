"""`n2m export`: a Lightning checkpoint → a self-contained model folder (config, safetensors, tokenizer, n2m.json)."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoTokenizer

from n2m.backbones import resolve_backbone
from n2m.schema import TaskSchema


def read_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint without running pickled code (`weights_only=True`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(f"{path} holds objects that cannot be loaded safely: {err}") from None


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path) -> Path:
    ckpt = read_checkpoint(checkpoint)
    model_hparams = ckpt["hyper_parameters"]
    data_hparams = ckpt.get("datamodule_hyper_parameters", {})
    schema = TaskSchema.from_hparams(model_hparams, data_hparams)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    backbone_dir = resolve_backbone(model_hparams["backbone"])
    AutoConfig.from_pretrained(backbone_dir).save_pretrained(out)
    AutoTokenizer.from_pretrained(backbone_dir).save_pretrained(out)
    weights = {
        k.removeprefix("model."): v.contiguous()
        for k, v in ckpt["state_dict"].items()
        if k.startswith("model.")
    }
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    schema.save(out)
    return out
