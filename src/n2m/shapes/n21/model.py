"""`SequenceModel`: backbone + pooling + N21 head. Shared by the Lightning task, the Predictor and the export."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from n2m.core.batching import length_runs
from n2m.core.card import ModelCard
from n2m.core.encoder import EncoderModel, Pooling, build_encoder, pool
from n2m.shapes.n21.encoding import PairEncoding
from n2m.shapes.n21.examples import Objective

# On CPU a batch of texts is encoded in up to CPU_RUNS length-sorted runs; a run past the first costs what
# RUN_OVERHEAD × the batch's real tokens of padding would. benchmarks/length_runs.py times the rule against fixed
# counts: at 0.05 it cuts length-grouped KorSTS batches (90% real) into one run or two and random-order ones into
# four or five, and it was the fastest setting of each case there.
CPU_RUNS = 8
RUN_OVERHEAD = 0.05


class SequenceModel(EncoderModel):
    """One text or a pair → logits (classes) or a normalized score; a retrieval model's score is the cosine.

    Regression works on scores mapped to [0, 1] by `score_range`, so one learning rate suits any scale.
    A bi-encoder pair encodes each text alone with the shared backbone: cosine similarity is the
    score; for classes the head sees [u, v, |u - v|] (Sentence-BERT).
    """

    def __init__(
        self,
        encoder: PreTrainedModel,
        objective: Objective,
        num_labels: int,
        pair_encoding: PairEncoding = "cross",
        pooling: Pooling = "mean",
        dropout: float = 0.1,
        score_range: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.objective = objective
        self.pair_encoding = pair_encoding
        self.pooling = pooling
        self.register_buffer("score_range", torch.tensor(score_range, dtype=torch.float), persistent=False)
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.cosine_head = pair_encoding == "bi" and objective in ("regression", "retrieval")
        if not self.cosine_head:
            width = hidden * 3 if pair_encoding == "bi" else hidden
            self.head = nn.Linear(width, 1 if objective == "regression" else num_labels)

    @classmethod
    def from_config(cls, config: PretrainedConfig, card: ModelCard) -> SequenceModel:
        settings = card.settings
        score_range = settings.get("score_range")
        return cls(
            build_encoder(config, pretrained=False),
            card.task,  # type: ignore[arg-type]
            len(card.labels or [None]),
            settings.get("pair_encoding", "cross"),
            settings.get("pooling", "mean"),
            score_range=tuple(score_range) if score_range else (0.0, 1.0),
        )

    def embed(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled sentence vectors `(B, H)`, not normalized (what the head and the cosine see)."""
        hidden = self.encoder(**inputs).last_hidden_state
        return pool(hidden, inputs["attention_mask"], self.pooling)

    def embed_pair(self, a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Both texts' vectors from one call of `embed_many`."""
        u, v = self.embed_many(a, b)
        return u, v

    def embed_many(self, *batches: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Each batch's vectors, all texts encoded together: on CPU sorted by length and cut into runs, each
        padded to its own longest text (`n2m.core.batching.length_runs`), on GPU one padded pass.

        Length grouping makes a batch's pairs alike, but the two sides of a pair still differ, and a batch in a
        random order holds texts of every length: padded to one length, such a batch is often half padding. A
        CPU's time goes to the matrix products, whose cost is their rows, and a kernel launch there costs
        microseconds; on a GPU the launches are what one pass saves. The vectors are the same either way
        (padding is masked)."""
        sizes = [b["input_ids"].shape[0] for b in batches]
        joined = batches[0] if len(batches) == 1 else self.joined(batches)
        lengths = joined["attention_mask"].sum(1)
        runs = length_runs(lengths, CPU_RUNS, RUN_OVERHEAD)
        if len(runs) == 1:
            return self.embed(joined).split(sizes)
        vectors = [
            self.embed({key: value[run, : int(lengths[run[0]])] for key, value in joined.items()}) for run in runs
        ]
        return torch.cat(vectors)[torch.cat(runs).argsort()].split(sizes)

    def joined(self, batches: tuple[dict[str, torch.Tensor], ...]) -> dict[str, torch.Tensor]:
        """Several batches of texts as one, each padded to the longest text of all."""
        length = max(b["input_ids"].shape[1] for b in batches)
        pad_id = self.encoder.config.pad_token_id or 0
        return {
            key: torch.cat([F.pad(x[key], (0, length - x[key].shape[1]), value=pad_id if key == "input_ids" else 0)
                            for x in batches])
            for key in batches[0]
        }  # fmt: skip

    def forward(self, batch: dict[str, dict[str, torch.Tensor]]) -> torch.Tensor:
        """Logits `(B, C)` for classes, or a normalized score `(B,)` for regression."""
        if "b" in batch:
            return self.head_logits(*self.embed_pair(batch["a"], batch["b"]))
        return self.head_logits(self.embed_many(batch["a"])[0])

    def head_logits(self, u: torch.Tensor, v: torch.Tensor | None = None) -> torch.Tensor:
        """Sentence vectors (`v`: the second text's, for a bi-encoder pair) → logits or a normalized score."""
        if v is not None:
            if self.cosine_head:
                return F.cosine_similarity(u, v, dim=-1)
            u = torch.cat([u, v, (u - v).abs()], dim=-1)
        out = self.head(self.dropout(u))
        return out.squeeze(-1) if self.objective == "regression" else out

    def to_outputs(self, logits: torch.Tensor) -> torch.Tensor:
        """Scores on the data's own scale (a retrieval model's: the cosine), or class probabilities."""
        if self.objective == "retrieval":
            return logits.float()
        if self.objective == "regression":
            low, high = self.score_range
            return low + logits.float() * (high - low)
        if self.objective == "classification":
            return logits.float().softmax(-1)
        return logits.float().sigmoid()

    def normalize_target(self, target: torch.Tensor) -> torch.Tensor:
        low, high = self.score_range
        return (target - low) / (high - low)


Model = SequenceModel
