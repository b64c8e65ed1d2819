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

BLEU and chrF are SacreBLEU's own (the reference implementation), over the split's texts kept until `compute()`:
torchmetrics' classes updated per batch took ×19 the time on the captioning test split
(benchmarks/scoring_speed.py), much of a generator's validation and test, and with uneven numbers of references
they differ from SacreBLEU in the first or second decimal. ROUGE and BERTScore are torchmetrics'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from sacrebleu.metrics import BLEU, CHRF
from torch import nn
from torchmetrics.text import ROUGEScore

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
        self.sacrebleu: dict[str, BLEU | CHRF] = {}  # scored at compute() over self.predictions / references
        if "bleu" in names:
            self.sacrebleu["bleu"] = BLEU(tokenize=bleu_tokenize)
        for name, word_order in CHRF_WORD_ORDER.items():
            if name in names:
                self.sacrebleu[name] = CHRF(word_order=word_order)
        self.predictions: list[str] = []
        self.references: list[list[str]] = []
        self.metrics = nn.ModuleDict()
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
        if self.sacrebleu:
            self.predictions += preds
            self.references += refs
        for name, metric in self.metrics.items():
            if name == "bertscore":
                metric.update(preds, [r[0] for r in refs])  # BERTScore takes one reference per prediction
            else:
                metric.update(preds, refs)

    def compute(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.sacrebleu:
            predictions, references = gathered(self.predictions, self.references)
            # SacreBLEU reads references as streams, the i-th reference of every segment (None where it has fewer)
            most = max(map(len, references), default=0)
            streams = [[r[i] if i < len(r) else None for r in references] for i in range(most)]
            for name, metric in self.sacrebleu.items():
                out[name] = metric.corpus_score(predictions, streams).score if predictions else 0.0
        for name, metric in self.metrics.items():
            value = metric.compute()
            if name == "rouge":
                out.update({k: 100 * float(value[f"{k}_fmeasure"]) for k in self.names if k in _ROUGE})
            else:
                out["bertscore"] = 100 * float(torch.as_tensor(value["f1"]).mean())
        return out

    def reset(self) -> None:
        self.predictions, self.references = [], []
        for metric in self.metrics.values():
            metric.reset()


def gathered(predictions: list[str], references: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """Every process's texts under DDP (each scored its share of the split), else this one's."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return predictions, references
    shares: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(shares, (predictions, references))
    return [p for ps, _ in shares for p in ps], [r for _, rs in shares for r in rs]
