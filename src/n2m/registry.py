"""The one place where n2m's shapes, file formats and offline backbones are named.

A new task is one reader (in `READERS`), at most one head, and one recipe. A new *shape* is a Task,
a DataModule, a Predictor and an exporter, registered here as one `Shape` line.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from n2m.backbones import OFFLINE_BACKBONES
from n2m.readers import READERS

__all__ = ["OFFLINE_BACKBONES", "READERS", "SHAPES", "Shape", "get_shape", "load_object"]


@dataclass(frozen=True)
class Shape:
    """Where a shape's parts live ("module:attribute"), and what its model and data tell each other."""

    task: str
    data: str
    predictor: str
    exporter: str
    # model arguments the data must follow (copied when the config is parsed), e.g. the backbone
    model_to_data: tuple[str, ...] = ("backbone",)
    # data attributes the model is built from (read when the data is instantiated), e.g. label names
    data_to_model: tuple[str, ...] = ()


SHAPES: dict[str, Shape] = {
    "N21": Shape(
        task="n2m.tasks.sequence:SequenceTask",
        data="n2m.data.datamodule:TextDataModule",
        predictor="n2m.predictor:SequencePredictor",
        exporter="n2m.export:export_sequence",
        model_to_data=("backbone", "objective", "pair_encoding"),
        data_to_model=("label_names", "score_range", "backbone_dir"),
    ),
    "N2M": Shape(
        task="n2m.tasks.seq2seq:Seq2SeqTask",
        data="n2m.data.seq2seq:Seq2SeqDataModule",
        predictor="n2m.predictor_seq2seq:Seq2SeqPredictor",
        exporter="n2m.export_seq2seq:export_seq2seq",
        model_to_data=("backbone", "architecture"),
        data_to_model=("backbone_dir",),
    ),
    "N2N": Shape(
        task="n2m.tasks.token:TokenTask",
        data="n2m.data.tokens:TokenDataModule",
        predictor="n2m.predictor_token:TokenPredictor",
        exporter="n2m.predictor_token:export_token",
        model_to_data=("backbone", "scheme"),
        data_to_model=("label_names", "backbone_dir", "unit"),
    ),
}


def get_shape(name: str) -> Shape:
    if name not in SHAPES:
        raise ValueError(f"unknown shape {name!r}; n2m knows {sorted(SHAPES)}")
    return SHAPES[name]


def load_object(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)
