"""Teacher forcing over real target tokens only (`n2m.shapes.n2m.packed`) computes the model's own function: the
same logits at every real position, the same loss and the same gradients as Hugging Face's padded forward."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from n2m.shapes.n2m import packed as packing
from n2m.shapes.n2m.model import Seq2SeqModel, build_seq2seq, special_ids
from n2m.shapes.n2m.packed import packable, packed_logits
from n2m.shapes.n2m.vision import VisionSize, build_captioner

# a CNN image encoder 64 wide against the tiny decoder's 32: Hugging Face adds the projection between them
CNN = VisionSize(hidden_size=64, layers=0, heads=2, ffn_size=64, patch_size=8, stem="conv")


def labels(lengths: list[int], width: int, vocab: int) -> torch.Tensor:
    """Targets of these lengths, padded with -100 at the end (as the DataModules collate them)."""
    out = torch.full((len(lengths), width), -100)
    for row, n in enumerate(lengths):
        out[row, :n] = torch.randint(1000, vocab, (n,))
    return out


def models(backbone: str):
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    torch.manual_seed(0)
    captioner = build_captioner("warm_start", backbone, tokenizer, special_ids("warm_start", tokenizer, backbone),
                                32, vision=CNN)  # fmt: skip
    text = build_seq2seq("warm_start", backbone, tokenizer)
    images = {"pixel_values": torch.randn(4, 3, 32, 32)}
    mask = torch.tensor([[1] * 9, [1] * 5 + [0] * 4, [1] * 7 + [0] * 2, [1] * 3 + [0] * 6])  # padded sources
    texts = {"input_ids": torch.randint(1000, 2000, (4, 9)), "attention_mask": mask}
    return {"captioner": (captioner, images), "text": (text, texts)}


@pytest.mark.parametrize("runs", [1, 3, 4])  # one padded call; runs of 2, 1 and 1 rows; a row each
@pytest.mark.parametrize("kind", ["captioner", "text"])
def test_packed_logits_are_the_models_own(tiny_backbone, kind, runs, monkeypatch):
    monkeypatch.setattr(packing, "CPU_RUNS", runs)
    net, source = models(tiny_backbone)[kind]
    net.eval()
    target = labels([6, 2, 11, 1], 11, net.config.decoder.vocab_size)
    real = target != -100
    padded = Seq2SeqModel(net)({**source, "labels": target})
    packed = packed_logits(net, source, target)
    assert packable(net, target) and packed.shape == (int(real.sum()), padded.shape[-1])
    torch.testing.assert_close(packed, padded[real], atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("kind", ["captioner", "text"])
def test_the_packed_loss_trains_the_same_gradients(tiny_backbone, kind):
    net, source = models(tiny_backbone)[kind]
    net.eval()  # dropout off: both passes see the same function
    model = Seq2SeqModel(net, label_smoothing=0.1)
    batch = {**source, "labels": labels([3, 8, 5, 2], 8, net.config.decoder.vocab_size)}

    def grads(loss: torch.Tensor) -> dict[str, torch.Tensor]:
        model.zero_grad()
        loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    padded_loss = model.loss(model(batch), batch["labels"])
    padded = grads(padded_loss)
    packed_loss = model.batch_loss(batch)
    packed = grads(packed_loss)
    torch.testing.assert_close(packed_loss, padded_loss)
    assert packed.keys() == padded.keys() and any("crossattention" in n for n in packed)
    for name in padded:
        torch.testing.assert_close(packed[name], padded[name], atol=1e-6, rtol=1e-4, msg=name)


def test_targets_padded_inside_use_the_models_own_forward(tiny_backbone):
    net, source = models(tiny_backbone)["captioner"]
    target = labels([4, 4, 4, 4], 6, net.config.decoder.vocab_size)
    target[1, 2] = -100  # a hole: causal attention alone would let later tokens see it
    assert not packable(net, target)
    model = Seq2SeqModel(net.eval())
    batch = {**source, "labels": target}
    torch.testing.assert_close(model.batch_loss(batch), model.loss(model(batch), target))


@pytest.mark.parametrize("kind", ["captioner", "text"])
def test_the_training_path_is_the_models_function(tiny_backbone, kind):
    """In training (dropout on, batch norm on the batch's statistics) the packed decoder must compute what the
    model's own forward computes, with a dropout too small to drop anything."""
    net, source = models(tiny_backbone)[kind]
    for module in net.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 1e-9  # training mode (dropout's own code path), nothing dropped in practice
    net.train()
    target = labels([6, 2, 11, 1], 11, net.config.decoder.vocab_size)
    padded = Seq2SeqModel(net)({**source, "labels": target})
    torch.testing.assert_close(packed_logits(net, source, target), padded[target != -100], atol=2e-5, rtol=1e-4)
