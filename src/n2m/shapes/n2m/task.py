"""`Seq2SeqTask`: the N2M shape (a text → another text, generated until end-of-sequence) as a LightningModule."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from n2m.core.card import ModelCard
from n2m.core.datamodule import DataSpec
from n2m.core.task import BaseTask, Optimization
from n2m.shapes.n2m.caption_metrics import SCENE_METRICS, CaptionMetricName, CaptionMetrics, SceneTruth
from n2m.shapes.n2m.generation import GenerationOptions, as_options, decode, generate_from
from n2m.shapes.n2m.images import ImageOptions
from n2m.shapes.n2m.metrics import BleuTokenize, GenerationMetrics, MetricName
from n2m.shapes.n2m.model import (
    NEW_IN_WARM_START,
    CrossAttentionInit,
    ScratchSize,
    Seq2SeqModel,
    build_seq2seq,
    init_cross_attention_from_self_attention,
    source_inputs,
    special_ids,
)
from n2m.shapes.n2m.outputs import GeneratedText
from n2m.shapes.n2m.vision import VisionSize, build_captioner, is_captioner


@dataclass
class Seq2SeqOptimization(Optimization):
    """`Optimization` with N2M's defaults: `warm_start` trains the checkpoint's weights at `lr` and the parts it
    adds (cross-attention, the LM head's transform) at `head_lr`; with one learning rate the decoder learned to
    ignore its source. Other architectures train everything at `lr`. `layer_lr_decay` does not apply."""

    lr: float = 1e-4
    head_lr: float | None = 1e-3


class Seq2SeqTask(BaseTask):
    """N2M: an encoder-decoder trained with teacher forcing and label smoothing; validation and test
    generate and score the text (BLEU / chrF / ROUGE), so checkpoints are chosen by what users get.

    The backbone, its folder (trimmed checkpoint, trained tokenizer or the resolved model), the architecture and
    the source encoding come from the data (`spec`, see `Seq2SeqDataModule`).

    Args:
        spec: what the data says the model is (`Seq2SeqTask.from_data(data)`; the CLI links it).
        encoder_layers, decoder_layers: `warm_start`: keep the checkpoint's first k layers on each side.
        tie_encoder_decoder: `warm_start` / `scratch`: the decoder shares the encoder's weights (cross-attention
            stays its own): half the parameters.
        cross_attention_init: `warm_start`: `random` (Rothe et al.) or `self_attention` (a copy of the layer's own
            pretrained self-attention: the default, see benchmarks/seq2seq_warm_start_probe.py).
        scratch: sizes of the from-scratch Transformer.
        label_smoothing: of the teacher-forced cross-entropy.
        generation: decoding for test and predict (overridable per call).
        val_generation: decoding for validation (e.g. greedy, cheaper); defaults to `generation`.
        metrics: what validation and test report (`bleu`, `chrf`: chrF, characters only; `chrf++`: chrF++, with
            word bigrams; `rouge1/2/L`; `bertscore`); `monitor` (one of them, or `loss`: the teacher-forced
            validation loss, for open-ended generation such as dialogue, where many answers are right and
            overlap metrics favour the blandest) chooses checkpoints.
        bleu_tokenize: SacreBLEU's tokenization: `13a` for English targets, `char` for Korean (see
            `n2m.shapes.n2m.metrics` for why).
        bertscore_model: a local encoder folder, for the optional `bertscore` metric.
        vision: image captioning (`data.images` set), `warm_start`: the image encoder built from scratch, a ViT
            or a Swin (`VisionSize`); it trains at `head_lr`, as everything new does.
        image_encoder: image captioning, `warm_start`: a local Hugging Face vision encoder folder to start the
            image encoder from instead (trained at `lr`).
        scenes, caption_vocabulary: image captioning of generated scenes: the `{split}.scenes.jsonl` files (what
            each image holds) and the generator's `vocabulary.json`, for the `object_accuracy` and
            `count_accuracy` metrics (`n2m.shapes.n2m.caption_metrics`).
        optimization: learning rates, schedule, freezing, warm start (`Seq2SeqOptimization`).
    """

    optimization_type = Seq2SeqOptimization

    def __init__(
        self,
        spec: DataSpec | None = None,
        encoder_layers: int | None = None,
        decoder_layers: int | None = None,
        tie_encoder_decoder: bool = False,
        cross_attention_init: CrossAttentionInit = "self_attention",
        scratch: ScratchSize | None = None,
        label_smoothing: float = 0.1,
        generation: GenerationOptions | None = None,
        val_generation: GenerationOptions | None = None,
        metrics: list[MetricName | CaptionMetricName] | None = None,
        bleu_tokenize: BleuTokenize = "13a",
        monitor: MetricName | CaptionMetricName | Literal["loss"] = "bleu",
        bertscore_model: str | None = None,
        vision: VisionSize | None = None,
        image_encoder: str | None = None,
        scenes: list[str] | None = None,
        caption_vocabulary: str | None = None,
        optimization: Seq2SeqOptimization | None = None,
    ) -> None:
        super().__init__()
        metrics = list(metrics or ["bleu", "chrf"])
        if monitor not in [*metrics, "loss"]:
            raise ValueError(f"monitor {monitor!r} must be `loss` or one of the metrics {metrics}")
        self.generation = as_options(generation)
        self.val_generation = as_options(val_generation) if val_generation else self.generation
        scratch = scratch if isinstance(scratch, ScratchSize) else ScratchSize(**(scratch or {}))
        vision = vision if isinstance(vision, VisionSize) else VisionSize(**(vision or {}))
        self.setup_task(
            spec,
            optimization,
            generation=asdict(self.generation),
            val_generation=asdict(self.val_generation),
            scratch=asdict(scratch),
            vision=asdict(vision),
            metrics=metrics,
        )
        self.vision = vision
        self.scratch = scratch
        folder = self.spec.backbone_dir
        self.tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(folder)
        if self.captioning:
            net = build_captioner(
                self.architecture,
                folder,
                self.tokenizer,
                special_ids(self.architecture, self.tokenizer, folder),  # type: ignore[arg-type]
                ImageOptions.from_card(self.spec.settings["image"]).size,
                vision=vision,
                image_encoder=image_encoder,
                decoder_layers=decoder_layers,
            )
            if cross_attention_init == "self_attention" and self.architecture == "warm_start":
                init_cross_attention_from_self_attention(net)  # type: ignore[arg-type]
        else:
            net = build_seq2seq(
                self.architecture,
                folder,
                self.tokenizer,
                encoder_layers=encoder_layers,
                decoder_layers=decoder_layers,
                tie_encoder_decoder=tie_encoder_decoder,
                cross_attention_init=cross_attention_init,
                scratch=scratch,
            )
        self.model = Seq2SeqModel(net, label_smoothing)
        self.main_metric = f"val/{monitor}"
        self.main_mode = "min" if monitor == "loss" else "max"
        wants_truth = scenes and caption_vocabulary and any(m in SCENE_METRICS for m in metrics)
        truth = SceneTruth(scenes, caption_vocabulary) if wants_truth else None  # type: ignore[arg-type]
        scorers: dict[str, torch.nn.Module] = {
            split: CaptionMetrics(metrics, bleu_tokenize, truth)
            if self.captioning
            else GenerationMetrics(metrics, bleu_tokenize, bertscore_model)  # type: ignore[arg-type]
            for split in ("val", "test")
        }
        self.split_metrics = torch.nn.ModuleDict(scorers)
        self._test_rows: list[dict[str, Any]] = []
        self.generated_tokens = 0
        self.prepare_weights()

    @property
    def architecture(self) -> str:
        return self.spec.settings["architecture"]

    @property
    def captioning(self) -> bool:
        """Whether the inputs are images (the data's `images` setting): a `VisionEncoderDecoderModel`."""
        return is_captioner(self.spec.to_dict())

    def is_new(self, name: str) -> bool:
        """What a warm start adds to the checkpoint (cross-attention, the LM head's transform; a captioner's
        from-scratch image encoder) trains at `head_lr`; everything else, and every weight of the other
        architectures, at `lr`."""
        if self.architecture != "warm_start":
            return False
        scratch_encoder = self.captioning and not self.hparams.image_encoder and name.startswith("net.encoder.")
        return scratch_encoder or any(part in name for part in NEW_IN_WARM_START)

    def card(self) -> ModelCard:
        """The data's card with what export and predict need: decoding, scoring, and the architecture's sizes."""
        h = self.hparams
        return self.spec.card(
            generation=asdict(self.generation),
            metrics=list(h.metrics),
            bleu_tokenize=h.bleu_tokenize,
            encoder_layers=h.encoder_layers,
            decoder_layers=h.decoder_layers,
            tie_encoder_decoder=h.tie_encoder_decoder,
            scratch=asdict(self.scratch),
            **({"vision": asdict(self.vision), "image_encoder": h.image_encoder} if self.captioning else {}),
        )

    # ---- generation -----------------------------------------------------------------------------------
    def generate(self, batch: dict[str, Any], options: GenerationOptions | None = None, **overrides: Any) -> list[str]:
        """Texts for a batch of sources; `overrides` change the recipe's decoding for this call only."""
        options = (options or self.generation).override(**overrides)
        was_training = self.model.training
        self.model.eval()
        ids = generate_from(self.model.net, source_inputs(batch), options)
        self.model.train(was_training)
        self.generated_tokens += sum(len(row) for row in ids)  # for throughput figures (benchmarks)
        return [decode(self.tokenizer, row) for row in ids]

    # ---- training and scoring ---------------------------------------------------------------------------
    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """The teacher-forced loss of a batch (label smoothing as set, padding ignored)."""
        return self.model.batch_loss(batch)

    def evaluate(self, batch: dict[str, Any], split: str) -> None:
        """The teacher-forced loss, and the generated texts scored (and, for test, kept to be written)."""
        self.log(f"{split}/loss", self.loss(batch), sync_dist=True, batch_size=len(batch["index"]))
        texts = self.generate(batch, self.val_generation if split == "val" else self.generation)
        images = {"images": batch["images"]} if "images" in batch else {}
        self.split_metrics[split].update(texts, batch["references"], **images)
        if split == "test":
            self._test_rows += [
                {"index": int(i), "prediction": t, "references": r}
                for i, t, r in zip(batch["index"].tolist(), texts, batch["references"], strict=True)
            ]

    def epoch_scores(self, split: str) -> dict[str, Any]:
        scores = {f"{split}/{k}": v for k, v in self.split_metrics[split].compute().items()}
        self.split_metrics[split].reset()
        if split == "test":
            self._write_test_generations()
        return scores

    def on_test_epoch_start(self) -> None:
        self._test_rows = []

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
    def predict_batch(self, batch: dict[str, Any]) -> list[Any]:
        return [GeneratedText(text) for text in self.generate(batch)]


Task = Seq2SeqTask
