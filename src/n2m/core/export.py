"""`n2m export`: a checkpoint → a self-contained model folder (weights, config, tokenizer, `n2m.json`), for every
shape: the task wrote its card and backbone folder into the checkpoint, and the shape's model saves itself.

A model trained on a vocabulary-trimmed backbone is exported with the full vocabulary by default (`vocab="full"`):
its trained embedding rows go back into the original table, so text from other sources than the training file is
read as the untouched backbone reads it, not as `<unk>` or smaller pieces (benchmarks/vocab_generalization.py)."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import AutoTokenizer

from n2m.backbones.vocab_trim import TrimMap, full_vocabulary
from n2m.core.card import ModelCard
from n2m.registry import get_shape

Vocabulary = Literal["full", "trained"]

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


def chosen_checkpoint(path: str | Path) -> Path:
    """A checkpoint file as given; a run folder (`--trainer.default_root_dir`) → the checkpoint its validation
    chose: the one results.json names (looked up in the folder, so a moved run still resolves), else the one
    `best-*.ckpt` in its checkpoints/ (the newest, where reruns left several)."""
    path = Path(path)
    if not path.is_dir():
        return path
    folder = path / "checkpoints"
    try:
        named = json.loads((path / "results.json").read_text(encoding="utf-8")).get("best_checkpoint")
    except (OSError, ValueError):
        named = None
    if named and (folder / Path(named).name).is_file():
        return folder / Path(named).name
    best = sorted(folder.glob("best-*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not best:
        raise FileNotFoundError(f"{path} is a folder with no best-*.ckpt in {folder}: give a run folder that "
                                "`n2m fit` wrote, or a checkpoint file (e.g. its checkpoints/last.ckpt)")  # fmt: skip
    return best[-1]


def model_weights(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The task's `model.*` weights, named as the model names them."""
    return {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}


def best_validation(checkpoint: dict[str, Any]) -> dict[str, float]:
    """The monitored validation score recorded in the checkpoint (ensembles can weight members by it)."""
    for key, state in checkpoint.get("callbacks", {}).items():
        if key.startswith("ModelCheckpoint") and state.get("best_model_score") is not None:
            return {state["monitor"]: float(state["best_model_score"])}
    return {}


def export_checkpoint(
    checkpoint: str | Path, out_dir: str | Path, vocab: Vocabulary = "full", title: str | None = None
) -> Path:
    """Write the model of `checkpoint` to `out_dir` (a run folder's: `chosen_checkpoint`). `vocab`: for a model
    trained on a trimmed vocabulary, `full` puts its rows back into the backbone's whole table (generators keep
    theirs: see `full_vocabulary`); `trained` keeps the small table. `title` names the model on its page (default:
    the run's folder name)."""
    ckpt = read_checkpoint(checkpoint)
    if CARD_KEY not in ckpt:
        raise ValueError(
            f"{checkpoint} has no model card: it was written by n2m before 0.2; export it with that version"
        )
    card = ModelCard.from_dict(ckpt[CARD_KEY])
    backbone = Path(ckpt[BACKBONE_KEY])
    weights = model_weights(ckpt)
    trim = TrimMap.of(backbone)
    if trim is not None:
        full = full_vocabulary(weights, trim) if vocab == "full" else None
        if full is not None:
            backbone, weights = trim.source, full
        elif vocab == "full":
            warnings.warn(f"{card.shape} generates from its vocabulary: exported with the {len(trim.kept)} trained "
                          "pieces only", stacklevel=2)  # fmt: skip
        card.provenance["vocabulary"] = {"trained_pieces": len(trim.kept), "exported": "full" if full else "trained"}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = get_shape(card.shape).part("model").from_backbone(backbone, card)
    model.load_state_dict(weights, strict=True)
    model.save(out)
    AutoTokenizer.from_pretrained(backbone).save_pretrained(out)
    card.provenance["validation"] = best_validation(ckpt)
    card.provenance["title"] = title or run_name(Path(checkpoint))
    card.save(out)
    return out


def run_name(checkpoint: Path) -> str:
    """`runs/korsts/checkpoints/best.ckpt` → `korsts`: the run folder's name, the best title a checkpoint has."""
    parent = checkpoint.resolve().parent
    return parent.parent.name if parent.name == "checkpoints" else parent.name
