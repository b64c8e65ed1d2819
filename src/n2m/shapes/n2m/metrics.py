"""Scores for generated text, through torchmetrics, on detokenized text (what a reader sees).

- `bleu`: SacreBLEU (corpus BLEU, 0-100). Its tokenization must be stated: `13a`, SacreBLEU's default
  and WMT's standard, for English and other space-separated Latin-script targets; `char` for Korean
  targets. Korean spacing is inconsistent (dialogue answers especially), so word-level BLEU punishes
  a spacing difference as a wrong word; character n-grams do not. `ko-mecab` (morphemes) would also
  fit, but needs MeCab-ko and its dictionary installed at the versions SacreBLEU pins, which n2m does
  not require; `char` needs nothing and is exact to reproduce.
- `chrf`: chrF (character 6-grams, beta 2; 0-100; Popović 2015): tokenization-free, the same for any language;
  SacreBLEU's `CHRF()` (`word_order=0`). torchmetrics' `CHRFScore()` defaults to word bigrams too, which is chrF++,
  so the order is always given here.
- `chrf++`: chrF++ (character 6-grams and word 1-2-grams; Popović 2017), SacreBLEU's `CHRF(word_order=2)`.
- `rouge1`, `rouge2`, `rougeL`: ROUGE F-measures (0-100), for summaries; with several references the
  best-matching one counts (SciTLDR's convention).
- `bertscore`: optional, BERTScore F1 with a local encoder folder (`bertscore_model`); slow on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torchmetrics.text import CHRFScore, ROUGEScore, SacreBLEUScore

MetricName = Literal["bleu", "chrf", "chrf++", "rouge1", "rouge2", "rougeL", "bertscore"]
BleuTokenize = Literal["13a", "char", "intl", "zh", "ko-mecab", "ja-mecab", "none", "flores101", "flores200"]
_ROUGE = ("rouge1", "rouge2", "rougeL")
CHRF_WORD_ORDER = {"chrf": 0, "chrf++": 2}  # word n-gram order of each chrF variant (n_word_order)


class GenerationMetrics(nn.Module):
    """The chosen scores over a whole split; `update(predictions, references)` per batch, `compute()` at the end."""

    def __init__(
        self,
        names: Sequence[MetricName] = ("bleu", "chrf"),
        bleu_tokenize: BleuTokenize = "13a",
        bertscore_model: str | None = None,
    ) -> None:
        super().__init__()
        unknown = sorted(set(names) - {"bleu", *CHRF_WORD_ORDER, "bertscore", *_ROUGE})
        if unknown:
            raise ValueError(
                f"unknown metric(s) {unknown}; n2m scores generation with bleu, chrf, chrf++, rouge1/2/L, bertscore"
            )
        self.names = list(names)
        self.metrics = nn.ModuleDict()
        if "bleu" in names:
            self.metrics["bleu"] = SacreBLEUScore(tokenize=bleu_tokenize)
        for name, word_order in CHRF_WORD_ORDER.items():
            if name in names:
                self.metrics[name] = CHRFScore(n_word_order=word_order)
        rouge = [n for n in names if n in _ROUGE]
        if rouge:
            self.metrics["rouge"] = ROUGEScore(rouge_keys=tuple(rouge), accumulate="best")
        if "bertscore" in names:
            if not bertscore_model:
                raise ValueError("bertscore needs `bertscore_model`: a local encoder folder (e.g. minilm-l6's)")
            from torchmetrics.text.bert import BERTScore

            self.metrics["bertscore"] = BERTScore(model_name_or_path=bertscore_model, num_layers=None)

    def update(self, predictions: Sequence[str], references: Sequence[Sequence[str]]) -> None:
        preds = list(predictions)
        refs = [list(r) for r in references]
        for name, metric in self.metrics.items():
            if name == "bertscore":
                metric.update(preds, [r[0] for r in refs])  # BERTScore takes one reference per prediction
            else:
                metric.update(preds, refs)

    def compute(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, metric in self.metrics.items():
            value = metric.compute()
            if name == "rouge":
                out.update({k: 100 * float(value[f"{k}_fmeasure"]) for k in self.names if k in _ROUGE})
            elif name == "bertscore":
                out["bertscore"] = 100 * float(torch.as_tensor(value["f1"]).mean())
            else:
                out[name] = 100 * float(value)
        return out

    def reset(self) -> None:
        for metric in self.metrics.values():
            metric.reset()
