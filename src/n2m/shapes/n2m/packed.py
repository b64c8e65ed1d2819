"""Teacher forcing over the target's real tokens only: a BERT-style decoder's position-wise layers (projections,
feed-forward, layer norms, the LM head) run on the batch's real target positions packed into one `(N, H)` matrix;
only attention sees the padded `(B, T)` layout.

Why: a batch's targets are padded to its longest. Captions in a random order (the captioning recipe: length
follows a scene's object count, so length-grouped batches hold scenes alike) leave about half of every batch as
padding, and Hugging Face's forward computes every layer on it and throws it away. The math is the model's own,
weight for weight (`packed_logits` equals the model's logits at the real positions: tested), so what is trained,
saved and generated is the ordinary Hugging Face model.

Targets are padded at the end, so causal self-attention alone keeps a real position from seeing padding; the
padded rows attention computes are dropped. Decoders of other kinds (GPT-2, T5, a relative-position BERT) and
targets padded anywhere but the end use the model's own forward (`packable`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers import BertLMHeadModel, PreTrainedModel

IGNORE = -100  # label of a padded target position


def packable(net: PreTrainedModel, labels: torch.Tensor) -> bool:
    """Whether `net`'s decoder is one `packed_logits` computes (BERT, absolute positions) and the targets are
    padded at the end only."""
    decoder = getattr(net, "decoder", None)
    if not isinstance(decoder, BertLMHeadModel) or decoder.is_gradient_checkpointing:
        return False
    if getattr(decoder.config, "position_embedding_type", "absolute") != "absolute":
        return False
    real = labels != IGNORE
    return not bool((real[:, 1:] & ~real[:, :-1]).any())


def encoder_states(net: PreTrainedModel, source: dict[str, torch.Tensor]) -> torch.Tensor:
    """What the decoder cross-attends to: the encoder's last states, projected to the decoder's width where the
    model has that projection (Hugging Face adds it when the widths differ)."""
    states = net.get_encoder()(**source)[0]
    projection = getattr(net, "enc_to_dec_proj", None)
    return projection(states) if projection is not None else states


def packed_logits(net: PreTrainedModel, source: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Logits `(N, V)` at the `N` real positions of `labels` (`labels[labels != -100]`'s order), teacher-forced
    from the start token as `net`'s own forward is; `source` is what the encoder reads (`pixel_values`, or
    `input_ids` and `attention_mask`)."""
    decoder: BertLMHeadModel = net.decoder
    memory = encoder_states(net, source)
    source_mask = source.get("attention_mask")
    memory_mask = None if source_mask is None else source_mask[:, None, None, :].bool()
    real = labels != IGNORE
    inputs = net.prepare_decoder_input_ids_from_labels(labels=labels)
    hidden = decoder.bert.embeddings(input_ids=inputs)[real]
    for layer in decoder.bert.encoder.layer:
        attention = layer.attention
        hidden = attention.output(_self_attention(attention.self, hidden, real), hidden)
        cross = layer.crossattention
        hidden = cross.output(_cross_attention(cross.self, hidden, real, memory, memory_mask), hidden)
        hidden = layer.output(layer.intermediate(hidden), hidden)
    return decoder.cls(hidden)


def _heads(module: nn.Module, packed: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Packed `(N, heads × d)` → padded `(B, heads, T, d)`, zeros at padding."""
    padded = packed.new_zeros(*real.shape, packed.shape[-1])
    padded[real] = packed
    return padded.unflatten(-1, (module.num_attention_heads, module.attention_head_size)).transpose(1, 2)


def _merge(attended: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Padded `(B, heads, T, d)` → packed `(N, heads × d)`."""
    return attended.transpose(1, 2).flatten(2)[real]


def _dropout(module: nn.Module) -> float:
    return module.dropout.p if module.training else 0.0


def _self_attention(module: nn.Module, hidden: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    q, k, v = (_heads(module, proj(hidden), real) for proj in (module.query, module.key, module.value))
    attended = F.scaled_dot_product_attention(q, k, v, dropout_p=_dropout(module), is_causal=True)
    return _merge(attended, real)


def _cross_attention(
    module: nn.Module, hidden: torch.Tensor, real: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    q = _heads(module, module.query(hidden), real)
    shape = (*memory.shape[:-1], module.num_attention_heads, module.attention_head_size)
    k, v = (proj(memory).view(shape).transpose(1, 2) for proj in (module.key, module.value))
    attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=_dropout(module))
    return _merge(attended, real)
