"""The one place where n2m's shapes, file formats and offline backbones are named, and the only place that
dispatches on a model's shape. Parts are "module:attribute" strings imported when first asked for, so the
registry imports no shape, and loading a predictor imports no training code."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from n2m.backbones import OFFLINE_BACKBONES
from n2m.readers import READERS

__all__ = ["OFFLINE_BACKBONES", "READERS", "SHAPES", "Shape", "get_shape", "load_object", "page_layout"]


# every shape package has these modules, each ending with this alias of its class
PARTS = {"task": "Task", "data": "DataModule", "model": "Model", "predictor": "Predictor"}


@dataclass(frozen=True)
class Shape:
    """A shape's package, how the web page lays out its results (by the card's `task`), its part of `n2m report`
    ("module:attribute", an `n2m.report.figures.ReportPart`; `n2m fit` writes the report after testing), and
    predictors of other runtimes than PyTorch ("module:attribute", by backend name)."""

    package: str
    layouts: dict[str, str]
    report: str
    backends: dict[str, str] = field(default_factory=dict)

    def part(self, name: str) -> Any:
        """`task`, `data`, `model` or `predictor`: the class."""
        return load_object(f"{self.package}.{name}:{PARTS[name]}")


N21_LAYOUTS = {"regression": "score", "classification": "classes", "multilabel": "labels", "retrieval": "score"}
SHAPES: dict[str, Shape] = {
    "N21": Shape("n2m.shapes.n21", N21_LAYOUTS, "n2m.report.n21:PART", {"onnx": "n2m.shapes.n21.onnx:OnnxPredictor"}),
    "N2N": Shape("n2m.shapes.n2n", {"bio": "entities", "tags": "tags"}, "n2m.report.n2n:PART"),
    "N2M": Shape("n2m.shapes.n2m", {"generation": "generation", "captioning": "caption"}, "n2m.report.n2m:PART"),
}
# an ensemble of N21 models is served like one N21 model
ENSEMBLE = "n2m.shapes.n21.ensemble:EnsemblePredictor"


def get_shape(name: str) -> Shape:
    if name not in SHAPES:
        raise ValueError(f"unknown shape {name!r}; n2m knows {sorted(SHAPES)}")
    return SHAPES[name]


def predictor_class(shape: str, backend: str = "torch") -> Any:
    if shape == "ensemble":
        if backend != "torch":
            raise ValueError(f"an ensemble runs its members with the torch backend, not {backend!r}")
        return load_object(ENSEMBLE)
    found = get_shape(shape)
    if backend == "torch":
        return found.part("predictor")
    if backend not in found.backends:
        known = ["torch", *found.backends]
        raise ValueError(f"unknown backend {backend!r} for the {shape} shape: use one of {known}")
    return load_object(found.backends[backend])


def page_layout(shape: str, task: str, inputs: list[str]) -> str:
    """How the web page shows a model's results; `json` for what it has no layout for."""
    layouts = N21_LAYOUTS if shape == "ensemble" else SHAPES[shape].layouts if shape in SHAPES else {}
    layout = layouts.get(task, "json")
    return "similarity" if layout == "score" and len(inputs) == 2 else layout


def load_object(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)
