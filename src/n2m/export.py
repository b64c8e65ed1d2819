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
    """Load a checkpoint without running pickled code (`weights_only=True`), memory-mapped: the optimizer
    state it also holds is never read into memory."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as err:
        raise ValueError(f"{path} holds objects that cannot be loaded safely: {err}") from None


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path) -> Path:
    """Dispatch on the checkpoint's shape (saved by every task, see `BaseTask.on_save_checkpoint`)."""
    from n2m.registry import get_shape, load_object

    ckpt = read_checkpoint(checkpoint)
    shape = get_shape(ckpt.get("n2m_shape", "N21"))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    load_object(shape.exporter)(ckpt, out)
    return out


def save_backbone_files(backbone: str, out: Path) -> None:
    """The backbone's config and tokenizer, so the folder loads without the backbone cache."""
    backbone_dir = resolve_backbone(backbone)
    AutoConfig.from_pretrained(backbone_dir).save_pretrained(out)
    AutoTokenizer.from_pretrained(backbone_dir).save_pretrained(out)


def save_model_weights(ckpt: dict, out: Path, prefix: str = "model.") -> None:
    weights = {k.removeprefix(prefix): v.contiguous() for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    path = out / "model.safetensors"
    save_file(weights, str(path), metadata={"format": "pt"})
    path.chmod(0o644)  # safetensors writes 0600; an exported model is meant to be shared and served


def export_sequence(ckpt: dict, out: Path) -> None:
    model_hparams = ckpt["hyper_parameters"]
    data_hparams = ckpt.get("datamodule_hyper_parameters", {})
    save_backbone_files(model_hparams.get("backbone_dir") or model_hparams["backbone"], out)
    save_model_weights(ckpt, out)
    schema = TaskSchema.from_hparams(model_hparams, data_hparams)
    schema.extra["validation"] = best_validation(ckpt)
    schema.save(out)


def best_validation(ckpt: dict) -> dict[str, float]:
    """The monitored validation score recorded in the checkpoint (ensembles can weight members by it)."""
    for key, state in ckpt.get("callbacks", {}).items():
        if key.startswith("ModelCheckpoint") and state.get("best_model_score") is not None:
            return {state["monitor"]: float(state["best_model_score"])}
    return {}
