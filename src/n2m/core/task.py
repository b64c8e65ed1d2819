"""`BaseTask`: what every shape's LightningModule shares: one optimization settings object, one
`configure_optimizers` (AdamW, warm-up and decay, layer-wise LR decay, a learning rate for new parts),
freezing, warm starts from another model, and the model card written into every checkpoint."""

from __future__ import annotations

import inspect
import re
from dataclasses import asdict, dataclass
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

from n2m.core.datamodule import DataSpec, ShapeDataModule
from n2m.core.export import BACKBONE_KEY, CARD_KEY, model_weights, read_checkpoint
from n2m.core.rows import prediction_rows

Schedule = Literal["linear", "cosine", "constant"]
SCHEDULES = {
    "linear": get_linear_schedule_with_warmup,
    "cosine": get_cosine_schedule_with_warmup,
    "constant": get_constant_schedule_with_warmup,
}
_LAYER = re.compile(r"\.layers?\.(\d+)\.")
NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """Weights from a Lightning checkpoint (no pickle beyond tensors) or an exported n2m folder, and the folder
    whose tokenizer their vocabulary rows follow: the export itself, or the backbone a checkpoint was trained from
    (a vocabulary-trimmed one is cached under n2m's home); None where that folder is gone."""
    path = Path(path)
    if path.is_dir():
        return load_file(str(path / "model.safetensors")), str(path)
    checkpoint = read_checkpoint(path)
    folder = checkpoint.get(BACKBONE_KEY)
    return model_weights(checkpoint), folder if folder and Path(folder).is_dir() else None


def vocabulary(folder: str | None) -> dict[str, int] | None:
    """Piece → row of a folder's tokenizer; None where there is none to read."""
    if not folder or not Path(folder, "tokenizer_config.json").is_file():
        return None
    return AutoTokenizer.from_pretrained(folder).get_vocab()


@dataclass
class Optimization:
    """How a task is trained: one settings object for every shape (a shape may change the defaults).

    Args:
        lr: peak learning rate of the backbone.
        weight_decay: AdamW's, on weights (not on biases and norms).
        warmup_ratio: share of the steps over which the learning rate rises from 0.
        schedule: `linear` or `cosine` decay after warm-up, or `constant`.
        layer_lr_decay: the learning rate of layer i is lr · decay^(layers − i); 1.0 turns it off.
        head_lr: learning rate of the parts the task adds to the backbone (heads, new cross-attention);
            None: `lr`.
        freeze_embeddings: the input embeddings stay as pretrained.
        freeze_layers: so do the embeddings and the lowest N transformer layers.
        init_from: a checkpoint or exported folder to take matching weights from (intermediate training).
        early_stopping_patience: stop after this many validations without improvement (off when None).
    """

    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    schedule: Schedule = "linear"
    layer_lr_decay: float = 1.0
    head_lr: float | None = None
    freeze_embeddings: bool = False
    freeze_layers: int = 0
    init_from: str | None = None
    early_stopping_patience: int | None = None


class BaseTask(L.LightningModule):
    """Subclasses call `setup_task` first in `__init__`, then set `self.model` (an `nn.Module` with an
    `encoder`) and `self.main_metric`, and end with `self.prepare_weights()`. Their other arguments must be plain
    values (or be converted and named in `setup_task`'s `converted`), so checkpoints load without pickle."""

    model: torch.nn.Module
    main_metric: str
    main_mode: str = "max"  # "min" where the main metric is a loss
    optimization_type: type[Optimization] = Optimization

    def setup_task(
        self, spec: DataSpec | dict[str, Any] | None, optimization: Optimization | dict | None, **converted: Any
    ) -> None:
        """Save the `__init__` arguments as hyperparameters: the data's spec, the optimization settings and the
        `converted` ones (e.g. dataclasses) as plain values, so checkpoints load with `weights_only=True`."""
        if spec is None:
            raise ValueError(f"{type(self).__name__} needs the data's spec: `{type(self).__name__}.from_data(data)`")
        self.spec = DataSpec.from_dict(spec)
        if isinstance(optimization, dict):
            optimization = self.optimization_type(**optimization)
        self.optimization = optimization or self.optimization_type()
        caller = inspect.currentframe().f_back  # type: ignore[union-attr]  # the subclass's __init__
        self.save_hyperparameters(ignore=["spec", "optimization", *converted], frame=caller)
        self.hparams.update(spec=self.spec.to_dict(), optimization=asdict(self.optimization), **converted)

    @classmethod
    def from_data(cls, data: ShapeDataModule, **settings: Any) -> BaseTask:
        """The task for a DataModule: backbone, labels and encoding come from the data."""
        return cls(spec=data.spec, **settings)

    def card(self) -> Any:
        """This model's card (`n2m.json`): the data's part and the model's own settings."""
        return self.spec.card()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """What `n2m export` needs, without reading hyperparameters: the card and the backbone's folder."""
        checkpoint[CARD_KEY] = self.card().to_dict()
        checkpoint[BACKBONE_KEY] = self.spec.backbone_dir

    def prepare_weights(self) -> None:
        """Training mode (`from_pretrained` returns eval mode, and Lightning keeps module modes as they are),
        freezing, then the warm start."""
        self.model.train()
        self.apply_freezing()
        self.warm_start()

    # ---- the steps of every shape: a shape gives `loss`, `evaluate` and `epoch_scores` ----------------
    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """The training loss of a batch."""
        raise NotImplementedError

    def evaluate(self, batch: dict[str, Any], split: str) -> None:
        """Log a validation or test batch's `<split>/loss` and update the split's metrics."""
        raise NotImplementedError

    def epoch_scores(self, split: str) -> dict[str, Any]:
        """The split's metrics over the epoch, as `<split>/<name>` (and reset them for the next one)."""
        raise NotImplementedError

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["index"]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.evaluate(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.evaluate(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.epoch_scores("val"), prog_bar=True, sync_dist=True)

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.epoch_scores("test"), sync_dist=True)

    def is_new(self, name: str) -> bool:
        """Whether a parameter is one the task adds to the backbone (trained at `head_lr`)."""
        return not name.startswith("encoder.")

    def predict_batch(self, batch: dict[str, Any]) -> list[Any]:
        """A batch of the predict split → one typed result per input (the predictor's result types)."""
        raise NotImplementedError

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        return {"index": batch["index"].tolist(), "results": self.predict_batch(batch)}

    def prediction_rows(self, batches: list[dict[str, Any]], datamodule: Any) -> list[dict[str, Any]]:
        """`predict_step` outputs (batches in length order) → one row per input, in the input file's order,
        with the file's ids (or row numbers): what `n2m predict` writes."""
        results = {i: r for batch in batches for i, r in zip(batch["index"], batch["results"], strict=True)}
        examples = datamodule.examples["predict"]
        return prediction_rows([results[i] for i in range(len(examples))], [ex.id for ex in examples])

    def warm_start(self) -> None:
        """`init_from`: take every weight whose name and shape match (e.g. a KorNLI model's encoder before STS).

        Heads that do not fit (3 classes → 1 score) are left as initialized, and said so.
        """
        source = self.optimization.init_from
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
        theirs, ours = vocabulary(their_folder), vocabulary(self.spec.backbone_dir)
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
        """AdamW over groups of (learning rate, weight decay), a step-wise schedule with warm-up."""
        o = self.optimization
        num_layers = getattr(self.model.encoder.config, "num_hidden_layers", 0)
        groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
        for name, param in self.model.named_parameters():
            if not param.requires_grad:
                continue
            depth = self._layer_depth(name, num_layers)
            lr = (o.head_lr or o.lr) if self.is_new(name) else o.lr * o.layer_lr_decay ** (num_layers + 1 - depth)
            decay = 0.0 if name.endswith(NO_DECAY) or param.ndim == 1 else o.weight_decay
            groups.setdefault((lr, decay), []).append(param)
        params = [{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()]
        # fused AdamW: one kernel per step for all parameters (CPU and CUDA), not a few per tensor
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for ps in groups.values() for p in ps)
        optimizer = torch.optim.AdamW(params, lr=o.lr, fused=fused)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        steps = {} if o.schedule == "constant" else {"num_training_steps": total}
        scheduler = SCHEDULES[o.schedule](optimizer, int(o.warmup_ratio * total), **steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def apply_freezing(self) -> None:
        """`freeze_embeddings`: the input embeddings stay as pretrained. `freeze_layers: N`: so do the embeddings
        and the lowest N transformer layers. Nothing below the lowest trained layer needs a gradient, so
        autograd neither runs their backward pass nor keeps their activations: less time and memory per step."""
        o = self.optimization
        if o.freeze_embeddings:
            for param in self.model.encoder.get_input_embeddings().parameters():
                param.requires_grad_(False)
        frozen = o.freeze_layers
        if frozen:
            num_layers = getattr(self.model.encoder.config, "num_hidden_layers", 0)
            if not 0 < frozen <= num_layers:
                raise ValueError(f"freeze_layers={frozen}: the backbone has {num_layers} layers")
            for name, param in self.model.named_parameters():
                if name.startswith("encoder.") and self._layer_depth(name, num_layers) <= frozen:
                    param.requires_grad_(False)
