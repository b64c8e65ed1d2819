"""`TokenModel`: backbone + a tag head over units (words or characters). Shared by the task, export and Predictor."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from n2m.core.card import ModelCard
from n2m.core.encoder import EncoderModel, build_encoder
from n2m.shapes.n2n.spans import NUM_OFFSET_BUCKETS


class TokenModel(EncoderModel):
    """Subword states → one tag distribution per unit.

    Each unit is read from the token holding its first character (a word's later sub-tokens are not read, as
    in the usual first-sub-token scheme) plus an embedding of where in that token the unit starts. For words
    the offset is always the same, so this is the usual head; for characters (KLUE-NER) it lets the head put
    an entity boundary inside a token (`▁박씨` → `박` is a person, `씨` is not) without splitting the text into
    characters, which would double the sequence and leave the words the backbone was trained on.
    The offset embedding starts at zero and the head is a one-hidden-layer MLP, so offset and token interact.
    """

    def __init__(self, encoder: PreTrainedModel, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.offset_embedding = nn.Embedding(NUM_OFFSET_BUCKETS, hidden)
        nn.init.zeros_(self.offset_embedding.weight)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Sequential(
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.LayerNorm(hidden),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_labels),
        )

    @classmethod
    def from_config(cls, config: PretrainedConfig, card: ModelCard) -> TokenModel:
        if not card.labels:
            raise ValueError("an N2N model card must name its labels (`labels`)")
        return cls(build_encoder(config, pretrained=False), len(card.labels))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits `(B, U, C)`; rows of units with `unit_token == -1` are meaningless (masked by the caller)."""
        hidden = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        index = batch["unit_token"].clamp(min=0)
        units = hidden.gather(1, index.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        units = units + self.offset_embedding(batch["unit_bucket"])
        return self.head(self.dropout(units))


Model = TokenModel
