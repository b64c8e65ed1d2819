"""Teacher forcing over the target's real tokens only: a BERT-style decoder's position-wise layers (projections,
feed-forward, layer norms, the LM head) run on the batch's real target positions packed into one `(N, H)` matrix;
only attention sees a padded layout.

Why: a batch's targets are padded to its longest. Captions in a random order (the captioning recipe: length
follows a scene's object count, so length-grouped batches hold scenes alike) leave about half of every batch as
padding, and Hugging Face's forward computes every layer on it and throws it away. The math is the model's own,
weight for weight (`packed_logits` equals the model's logits at the real positions: tested), so what is trained,
saved and generated is the ordinary Hugging Face model.

Attention needs a `(rows, T)` layout; on CPU it runs on length-sorted runs of the batch's rows, each padded
only to its own longest target (`n2m.core.batching.length_runs`, as N21's encoder reads a batch of texts): its
cost grows with the padded width squared. On a GPU it is one padded call, cheaper there than several launches.
Targets are padded at the end, so causal self-attention alone keeps a real position from seeing padding; the
padded rows attention computes are dropped. Decoders of other kinds (GPT-2, T5, a relative-position BERT) and
targets padded anywhere but the end use the model's own forward (`packable`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers import BertLMHeadModel, PreTrainedModel

from n2m.core.batching import length_runs

IGNORE = -100  # label of a padded target position
CPU_RUNS = 4  # attention's length-sorted runs per batch on CPU (benchmarks/length_runs.py times 1 to 8)


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
    runs = Runs(real, length_runs(real.sum(1), CPU_RUNS))
    inputs = net.prepare_decoder_input_ids_from_labels(labels=labels)
    positions = torch.arange(labels.shape[1], device=labels.device).expand_as(labels)
    # the real tokens as one sequence of the model's own embeddings, each at its own position
    hidden = decoder.bert.embeddings(input_ids=inputs[real][None], position_ids=positions[real][None])[0]
    for layer in decoder.bert.encoder.layer:
        attention = layer.attention
        hidden = attention.output(_self_attention(attention.self, hidden, runs), hidden)
        cross = layer.crossattention
        hidden = cross.output(_cross_attention(cross.self, hidden, runs, memory, memory_mask), hidden)
        hidden = layer.output(layer.intermediate(hidden), hidden)
    return decoder.cls(hidden)


class Runs:
    """The batch's rows in length-sorted runs (`n2m.core.batching.length_runs`), each laid out `(rows, width)`,
    `width` its longest target. Moving between the packed and the run layouts is one `index_select` each way
    (whose backward is a cheap `index_add`), not boolean-mask indexing."""

    def __init__(self, real: torch.Tensor, runs: list[torch.Tensor]) -> None:
        lengths = real.sum(1)
        total = int(lengths.sum())
        position = real.flatten().cumsum(0).view_as(real) - 1  # packed index of each real (row, t)
        self.shapes: list[tuple[torch.Tensor, int]] = []  # each run's rows and width
        gathers, picks, offset = [], torch.empty(total, dtype=torch.long, device=real.device), 0
        for rows in runs:
            width = int(lengths[rows[0]])
            mask = real[rows, :width].flatten()
            cells = position[rows, :width].flatten()
            gathers.append(torch.where(mask, cells, total))  # padding reads the zero row after the packed ones
            picks[cells[mask]] = offset + mask.nonzero().squeeze(1)
            self.shapes.append((rows, width))
            offset += len(mask)
        self.gathers, self.picks = gathers, picks

    def heads(self, module: nn.Module, packed: torch.Tensor) -> list[torch.Tensor]:
        """Packed `(N, heads × d)` → per run, padded `(rows, heads, width, d)` with zeros at padding."""
        padded = torch.cat([packed, packed.new_zeros(1, packed.shape[-1])])
        split = (module.num_attention_heads, module.attention_head_size)
        return [padded.index_select(0, gather).view(len(rows), width, *split).transpose(1, 2)
                for gather, (rows, width) in zip(self.gathers, self.shapes, strict=True)]  # fmt: skip

    def merge(self, attended: list[torch.Tensor]) -> torch.Tensor:
        """Per run `(rows, heads, width, d)` → packed `(N, heads × d)`, in the packed order."""
        return torch.cat([a.transpose(1, 2).flatten(0, 1).flatten(1) for a in attended]).index_select(0, self.picks)


def _dropout(module: nn.Module) -> float:
    return module.dropout.p if module.training else 0.0


def _self_attention(module: nn.Module, hidden: torch.Tensor, runs: Runs) -> torch.Tensor:
    q, k, v = (runs.heads(module, proj(hidden)) for proj in (module.query, module.key, module.value))
    p = _dropout(module)
    attended = [F.scaled_dot_product_attention(*run, dropout_p=p, is_causal=True) for run in zip(q, k, v, strict=True)]
    return runs.merge(attended)


def _cross_attention(
    module: nn.Module, hidden: torch.Tensor, runs: Runs, memory: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    shape = (*memory.shape[:-1], module.num_attention_heads, module.attention_head_size)
    k, v = (proj(memory).view(shape).transpose(1, 2) for proj in (module.key, module.value))
    p = _dropout(module)
    attended = []
    for q, (rows, _) in zip(runs.heads(module, module.query(hidden)), runs.shapes, strict=True):
        attn_mask = None if mask is None else mask[rows]
        attended.append(F.scaled_dot_product_attention(q, k[rows], v[rows], attn_mask=attn_mask, dropout_p=p))
    return runs.merge(attended)
