"""N2M export: a Seq2SeqTask checkpoint → a Hugging Face encoder-decoder folder plus `n2m.json`.

The folder is an ordinary HF model (`AutoModelForSeq2SeqLM.from_pretrained` loads it, tokenizer included);
`n2m.json` adds what n2m needs to use it the way it was trained: how sources are cut and prefixed and
the recipe's decoding settings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer, GenerationConfig

from n2m.backbones import resolve_backbone
from n2m.export import best_validation
from n2m.models.seq2seq import ScratchSize, build_seq2seq
from n2m.schema import SCHEMA_FILE, read_info


@dataclass
class Seq2SeqSchema:
    """The N2M `n2m.json`."""

    shape: str
    architecture: str
    backbone: str
    inputs: list[str]
    max_source_length: int
    source_prefix: str
    generation: dict[str, Any]
    metrics: list[str]
    bleu_tokenize: str
    n2m_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_hparams(cls, model: dict[str, Any], data: dict[str, Any]) -> Seq2SeqSchema:
        from n2m import __version__

        return cls(
            shape="N2M",
            architecture=model["architecture"],
            backbone=model["backbone"],
            inputs=["text"],
            max_source_length=data.get("max_source_length", 128),
            source_prefix=data.get("source_prefix", ""),
            generation=dict(model["generation"]),
            metrics=list(model["metrics"]),
            bleu_tokenize=model["bleu_tokenize"],
            n2m_version=__version__,
            extra={
                "encoder_layers": model.get("encoder_layers"),
                "decoder_layers": model.get("decoder_layers"),
                "tie_encoder_decoder": model.get("tie_encoder_decoder", False),
            },
        )

    def save(self, folder: str | Path) -> None:
        text = json.dumps(asdict(self), ensure_ascii=False, indent=2) + "\n"
        Path(folder, SCHEMA_FILE).write_text(text, encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> Seq2SeqSchema:
        return cls(**read_info(folder))


def export_seq2seq(ckpt: dict, out: Path) -> None:
    h = ckpt["hyper_parameters"]
    data = ckpt.get("datamodule_hyper_parameters", {})
    folder = h.get("backbone_dir") or str(resolve_backbone(h["backbone"]))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    # built untied: a tied model's state dict holds every shared tensor under both names, so loading it into
    # the untied architecture gives the same function as separate tensors, which any HF install can load
    net = build_seq2seq(
        h["architecture"],
        folder,
        tokenizer,
        encoder_layers=h.get("encoder_layers"),
        decoder_layers=h.get("decoder_layers"),
        scratch=ScratchSize(**h.get("scratch", {})),
        pretrained=False,
    )
    if h["architecture"] == "pretrained" and Path(folder, "generation_config.json").is_file():
        net.generation_config = GenerationConfig.from_pretrained(folder)
    state = {k.removeprefix("model.net."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.net.")}
    net.load_state_dict(state, strict=True)
    net.save_pretrained(out)
    tokenizer.save_pretrained(out)
    schema = Seq2SeqSchema.from_hparams(h, data)
    schema.extra["validation"] = best_validation(ckpt)
    schema.save(out)
