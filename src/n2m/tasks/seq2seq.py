"""`Seq2SeqTask`: the N2M shape (a text → another text, generated until end-of-sequence) as a LightningModule."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from n2m.backbones import resolve_backbone
from n2m.generation import GenerationOptions, as_options, decode, generate_ids
from n2m.models.seq2seq import (
    NEW_IN_WARM_START,
    Architecture,
    CrossAttentionInit,
    ScratchSize,
    Seq2SeqModel,
    build_seq2seq,
)
from n2m.tasks.base import _NO_DECAY, _SCHEDULES, BaseTask, Schedule
from n2m.tasks.generation_metrics import BleuTokenize, GenerationMetrics, MetricName


class Seq2SeqTask(BaseTask):
    """N2M: an encoder-decoder trained with teacher forcing and label smoothing; validation and test
    generate and score the text (BLEU / chrF / ROUGE), so checkpoints are chosen by what users get.

    Args:
        backbone: `warm_start`: the BERT-style checkpoint both encoder and decoder start from (`e5-small`,
            `minilm-l6`, a folder); `pretrained`: a HF seq2seq model folder or hub id; `scratch`: unused.
        architecture: `warm_start` (Rothe et al. 2020), `scratch` (a small Transformer and a tokenizer trained
            on the training text) or `pretrained` (any HF seq2seq model). See `n2m.models.seq2seq`.
        encoder_layers, decoder_layers: `warm_start`: keep the checkpoint's first k layers on each side.
        tie_encoder_decoder: `warm_start` / `scratch`: the decoder shares the encoder's weights (cross-attention
            stays its own): half the parameters.
        cross_attention_init: `warm_start`: `random` (Rothe et al.) or `self_attention` (a copy of the layer's own
            pretrained self-attention: the default, see benchmarks/seq2seq_warm_start_probe.py).
        lr, head_lr: `warm_start` trains the checkpoint's weights at `lr` and the parts it adds (cross-attention,
            the LM head's transform) at `head_lr` (None: `lr`); with one learning rate the decoder learned to
            ignore its source. Other architectures train everything at `lr`. `layer_lr_decay` does not apply.
        scratch: sizes of the from-scratch Transformer.
        label_smoothing: of the teacher-forced cross-entropy.
        generation: decoding for test and predict (overridable per call).
        val_generation: decoding for validation (e.g. greedy, cheaper); defaults to `generation`.
        metrics: what validation and test report; `monitor` (one of them, or `loss`: the teacher-forced
            validation loss, for open-ended generation such as dialogue, where many answers are right and
            overlap metrics favour the blandest) chooses checkpoints.
        bleu_tokenize: SacreBLEU's tokenization: `13a` for English targets, `char` for Korean (see
            `n2m.tasks.generation_metrics` for why).
        bertscore_model: a local encoder folder, for the optional `bertscore` metric.
        backbone_dir: the folder the model and tokenizer are built from; set by the data (trimmed checkpoint,
            trained tokenizer, or the resolved backbone).
    """

    shape = "N2M"

    def __init__(
        self,
        backbone: str = "e5-small",
        architecture: Architecture = "warm_start",
        encoder_layers: int | None = None,
        decoder_layers: int | None = None,
        tie_encoder_decoder: bool = False,
        cross_attention_init: CrossAttentionInit = "self_attention",
        scratch: ScratchSize | None = None,
        label_smoothing: float = 0.1,
        generation: GenerationOptions | None = None,
        val_generation: GenerationOptions | None = None,
        metrics: list[MetricName] | None = None,
        bleu_tokenize: BleuTokenize = "13a",
        monitor: MetricName | Literal["loss"] = "bleu",
        bertscore_model: str | None = None,
        lr: float = 1e-4,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        schedule: Schedule = "linear",
        layer_lr_decay: float = 1.0,
        head_lr: float | None = 1e-3,
        freeze_embeddings: bool = False,
        freeze_layers: int = 0,
        init_from: str | None = None,
        early_stopping_patience: int | None = None,
        backbone_dir: str | None = None,
    ) -> None:
        super().__init__()
        metrics = list(metrics or ["bleu", "chrf"])
        if monitor not in [*metrics, "loss"]:
            raise ValueError(f"monitor {monitor!r} must be `loss` or one of the metrics {metrics}")
        if architecture == "scratch" and not backbone_dir:
            raise ValueError("a scratch model needs `backbone_dir`: the tokenizer the data trains (the CLI links it)")
        self.generation = as_options(generation)
        self.val_generation = as_options(val_generation) if val_generation else self.generation
        scratch = scratch if isinstance(scratch, ScratchSize) else ScratchSize(**(scratch or {}))
        # plain types in checkpoints (they load with `weights_only=True`)
        self.save_hyperparameters(ignore=["generation", "val_generation", "scratch", "metrics"])
        self.hparams.update(
            generation=asdict(self.generation),
            val_generation=asdict(self.val_generation),
            scratch=asdict(scratch),
            metrics=metrics,
        )
        folder = backbone_dir or str(resolve_backbone(backbone))
        self.tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(folder)
        net = build_seq2seq(
            architecture,
            folder,
            self.tokenizer,
            encoder_layers=encoder_layers,
            decoder_layers=decoder_layers,
            tie_encoder_decoder=tie_encoder_decoder,
            cross_attention_init=cross_attention_init,
            scratch=scratch,
        )
        self.model = Seq2SeqModel(net, label_smoothing)
        self.model.train()  # from_pretrained returns eval mode, and Lightning keeps module modes as they are
        self.main_metric = f"val/{monitor}"
        self.main_mode = "min" if monitor == "loss" else "max"
        self.val_metrics = GenerationMetrics(metrics, bleu_tokenize, bertscore_model)
        self.test_metrics = GenerationMetrics(metrics, bleu_tokenize, bertscore_model)
        self._test_rows: list[dict[str, Any]] = []
        self.generated_tokens = 0
        self.apply_freezing()
        self.warm_start()

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW with warm-up and decay (as `BaseTask`); new parts of a warm start at `head_lr`, the rest at `lr`."""
        h = self.hparams
        groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
        for name, param in self.model.named_parameters():
            if not param.requires_grad:
                continue
            new = h.architecture == "warm_start" and any(part in name for part in NEW_IN_WARM_START)
            lr = (h.head_lr or h.lr) if new else h.lr
            decay = 0.0 if name.endswith(_NO_DECAY) or param.ndim == 1 else h.weight_decay
            groups.setdefault((lr, decay), []).append(param)
        params = [{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()]
        optimizer = torch.optim.AdamW(params, lr=h.lr)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        schedule = {} if h.schedule == "constant" else {"num_training_steps": total}
        scheduler = _SCHEDULES[h.schedule](optimizer, int(h.warmup_ratio * total), **schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ---- generation -----------------------------------------------------------------------------------
    def generate(self, batch: dict[str, Any], options: GenerationOptions | None = None, **overrides: Any) -> list[str]:
        """Texts for a batch of sources; `overrides` change the recipe's decoding for this call only."""
        options = (options or self.generation).override(**overrides)
        was_training = self.model.training
        self.model.eval()
        ids = generate_ids(self.model.net, batch["input_ids"], batch["attention_mask"], options)
        self.model.train(was_training)
        self.generated_tokens += sum(len(row) for row in ids)  # for throughput figures (benchmarks)
        return [decode(self.tokenizer, row) for row in ids]

    # ---- training and scoring ---------------------------------------------------------------------------
    def _loss(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.model.loss(self.model(batch), batch["labels"])

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        size = batch["input_ids"].shape[0]
        self.log("val/loss", self._loss(batch), sync_dist=True, batch_size=size)
        self.val_metrics.update(self.generate(batch, self.val_generation), batch["references"])

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        size = batch["input_ids"].shape[0]
        self.log("test/loss", self._loss(batch), sync_dist=True, batch_size=size)
        texts = self.generate(batch)
        self.test_metrics.update(texts, batch["references"])
        self._test_rows += [
            {"index": int(i), "prediction": t, "references": r}
            for i, t, r in zip(batch["index"].tolist(), texts, batch["references"], strict=True)
        ]

    def on_validation_epoch_end(self) -> None:
        self.log_dict({f"val/{k}": v for k, v in self.val_metrics.compute().items()}, prog_bar=True, sync_dist=True)
        self.val_metrics.reset()

    def on_test_epoch_start(self) -> None:
        self._test_rows = []

    def on_test_epoch_end(self) -> None:
        self.log_dict({f"test/{k}": v for k, v in self.test_metrics.compute().items()}, sync_dist=True)
        self.test_metrics.reset()
        self._write_test_generations()

    def _write_test_generations(self) -> None:
        """`<root>/test_generations.jsonl`: source, output and references of every test row, in file order
        (this process's rows under DDP), so the scores can be read against the text."""
        datamodule = getattr(self.trainer, "datamodule", None)
        examples = getattr(datamodule, "examples", {}).get("test")
        if not examples or not self.trainer.default_root_dir:
            return
        rank = self.global_rank
        path = Path(self.trainer.default_root_dir) / f"test_generations{'' if rank == 0 else f'.rank{rank}'}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as f:
            for row in sorted(self._test_rows, key=lambda r: r["index"]):
                ex = examples[row["index"]]
                line = {"file": ex.file, "line": ex.line, "source": ex.source, **row}
                line.pop("index")
                f.write(json.dumps(line, ensure_ascii=False) + "\n")

    # ---- prediction ---------------------------------------------------------------------------------------
    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        return {"index": batch["index"], "texts": self.generate(batch)}

    def prediction_rows(self, batches: list[dict[str, Any]], datamodule: Any) -> list[dict[str, Any]]:
        """One generated text per input, in the input file's order, with its id (or row number)."""
        texts: dict[int, str] = {}
        for b in batches:
            texts.update(zip(b["index"].tolist(), b["texts"], strict=True))
        examples = datamodule.examples["predict"]
        return [{"id": ex.id if ex.id is not None else str(i), "text": texts[i]} for i, ex in enumerate(examples)]
