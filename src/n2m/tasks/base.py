"""What every task shares: AdamW with warm-up and decay, layer-wise LR decay, warm starts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from safetensors.torch import load_file
from transformers import (
    AutoTokenizer,
    PreTrainedModel,
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)

from n2m.backbones import BackboneError, resolve_backbone

Schedule = Literal["linear", "cosine", "constant"]
_SCHEDULES = {
    "linear": get_linear_schedule_with_warmup,
    "cosine": get_cosine_schedule_with_warmup,
    "constant": get_constant_schedule_with_warmup,
}
_LAYER = re.compile(r"\.layers?\.(\d+)\.")
_NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """Weights from a Lightning checkpoint (no pickle beyond tensors) or an exported n2m folder, and the folder
    whose tokenizer their vocabulary rows follow: the export itself, or the backbone a checkpoint was trained from
    (a vocabulary-trimmed one is cached under n2m's home); None where that folder is gone."""
    path = Path(path)
    if path.is_dir():
        return load_file(str(path / "model.safetensors")), str(path)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    weights = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
    return weights, backbone_folder(checkpoint.get("hyper_parameters", {}))


def backbone_folder(hparams: Any) -> str | None:
    """The folder a task's backbone was loaded from (the data's trimmed copy, else the named backbone), or None."""
    try:
        return str(resolve_backbone(hparams.get("backbone_dir") or hparams["backbone"]))
    except (KeyError, BackboneError):
        return None


def vocabulary(folder: str | None) -> dict[str, int] | None:
    """Piece → row of a folder's tokenizer; None where there is none to read."""
    if not folder or not Path(folder, "tokenizer_config.json").is_file():
        return None
    return AutoTokenizer.from_pretrained(folder).get_vocab()


class BaseTask(L.LightningModule):
    """Subclasses set `self.model` (an `nn.Module` with an `encoder`) and `self.main_metric`, and save
    the optimization hyperparameters read here: lr, weight_decay, warmup_ratio, schedule, layer_lr_decay,
    head_lr, freeze_embeddings, freeze_layers, init_from."""

    model: torch.nn.Module
    main_metric: str
    main_mode: str = "max"  # "min" where the main metric is a loss
    shape: str  # registry key, stored in checkpoints so `n2m export` finds the shape's exporter

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["n2m_shape"] = self.shape

    def prediction_rows(self, batches: list[Any], datamodule: Any) -> list[dict[str, Any]]:
        """`predict_step` outputs → one dict per input, in the input file's order (for `n2m predict`)."""
        raise NotImplementedError

    def warm_start(self) -> None:
        """`init_from`: take every weight whose name and shape match (e.g. a KorNLI model's encoder before STS).

        Heads that do not fit (3 classes → 1 score) are left as initialized, and said so.
        """
        source = self.hparams.get("init_from")
        if not source:
            return
        own = self.model.state_dict()
        weights, their_folder = load_weights(source)
        self._align_vocabulary(weights, their_folder, source)
        fitting = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
        self.model.load_state_dict(fitting, strict=False)
        skipped = sorted(set(weights) - set(fitting))
        rank_zero_info(f"init_from {source}: loaded {len(fitting)} tensors, kept new: {skipped or 'none'}")

    def _align_vocabulary(self, weights: dict[str, torch.Tensor], their_folder: str | None, source: str) -> None:
        """Two vocabulary-trimmed models (KorNLI's pieces, then KorSTS's) number their pieces differently: give
        each of our pieces the source's row for the same piece, and keep our own row for pieces it lacks."""
        encoder = getattr(self.model, "encoder", None)
        if not isinstance(encoder, PreTrainedModel):
            return
        embeddings = encoder.get_input_embeddings().weight
        key = next((k for k, v in self.model.named_parameters() if v is embeddings), None)
        if key not in weights:
            return
        theirs, ours = vocabulary(their_folder), vocabulary(backbone_folder(self.hparams))
        if theirs is None or ours is None:
            if weights[key].shape != embeddings.shape:
                rank_zero_warn(f"init_from {source}: its vocabulary cannot be read, so the input embeddings stay ours")
            return
        if theirs == ours:
            return
        shared = [(i, theirs[piece]) for piece, i in ours.items() if piece in theirs]
        pairs = torch.tensor(shared, dtype=torch.long).reshape(-1, 2)  # (0, 2) when nothing is shared
        rows = embeddings.detach().clone()
        rows[pairs[:, 0]] = weights[key][pairs[:, 1]].to(rows.dtype)
        weights[key] = rows
        rank_zero_info(f"init_from {source}: {len(pairs)} of our {len(ours)} vocabulary pieces take its embeddings")

    def _layer_depth(self, name: str, num_layers: int) -> int:
        """0 for embeddings, i + 1 for transformer layer i, num_layers + 1 for everything above."""
        if ".embeddings." in f".{name}":
            return 0
        match = _LAYER.search(name)
        if match and name.startswith("encoder."):
            return int(match.group(1)) + 1
        return num_layers + 1

    def configure_optimizers(self) -> dict[str, Any]:
        h = self.hparams
        num_layers = getattr(self.model.encoder.config, "num_hidden_layers", 0)
        groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
        for name, param in self.model.named_parameters():
            if not param.requires_grad:
                continue
            depth = self._layer_depth(name, num_layers)
            is_head = not name.startswith("encoder.")
            lr = (h.head_lr or h.lr) if is_head else h.lr * h.layer_lr_decay ** (num_layers + 1 - depth)
            decay = 0.0 if name.endswith(_NO_DECAY) or param.ndim == 1 else h.weight_decay
            groups.setdefault((lr, decay), []).append(param)
        params = [{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()]
        optimizer = torch.optim.AdamW(params, lr=h.lr, fused=False)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = _SCHEDULES[h.schedule](
            optimizer,
            int(h.warmup_ratio * total),
            **({} if h.schedule == "constant" else {"num_training_steps": total}),
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def apply_freezing(self) -> None:
        """`freeze_embeddings`: the input embeddings stay as pretrained. `freeze_layers: N`: so do the embeddings
        and the lowest N transformer layers. Nothing below the lowest trained layer needs a gradient, so
        autograd neither runs their backward pass nor keeps their activations: less time and memory per step."""
        h = self.hparams
        if h.get("freeze_embeddings"):
            for param in self.model.encoder.get_input_embeddings().parameters():
                param.requires_grad_(False)
        frozen = h.get("freeze_layers") or 0
        if frozen:
            num_layers = getattr(self.model.encoder.config, "num_hidden_layers", 0)
            if not 0 < frozen <= num_layers:
                raise ValueError(f"freeze_layers={frozen}: the backbone has {num_layers} layers")
            for name, param in self.model.named_parameters():
                if name.startswith("encoder.") and self._layer_depth(name, num_layers) <= frozen:
                    param.requires_grad_(False)
