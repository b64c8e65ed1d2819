"""SequenceTask, its data and its Predictor on a tiny random backbone: every head, pair mode and loss."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel, BertTokenizer

from n2m import Predictor
from n2m.core.datamodule import DataSpec
from n2m.core.export import export_checkpoint
from n2m.core.samplers import LengthGroupedSampler
from n2m.core.task import Optimization
from n2m.shapes.n21.data import TextDataModule
from n2m.shapes.n21.examples import Columns
from n2m.shapes.n21.losses import cosent_loss
from n2m.shapes.n21.task import SequenceTask

STS = Columns(text="sentence1", text_pair="sentence2", label="score", id="id")
NLI = Columns(text="sentence1", text_pair="sentence2", label="gold_label")
OPTIMIZATION = set(Optimization.__dataclass_fields__)


def make(
    backbone: str, files: dict[str, Path], columns: Columns, objective: str, pair_encoding: str = "cross", **task_kwargs
) -> tuple[SequenceTask, TextDataModule]:
    data = TextDataModule(
        train=str(files["train"]),
        val=str(files["val"]),
        columns=columns,
        batch_size=8,
        backbone=backbone,
        objective=objective,
        pair_encoding=pair_encoding,
        max_length=48,
        cache_tokens=False,
    )
    optimization = {"lr": 1e-3, **{k: task_kwargs.pop(k) for k in list(task_kwargs) if k in OPTIMIZATION}}
    task = SequenceTask.from_data(data, optimization=Optimization(**optimization), **task_kwargs)
    return task, data


def quick_trainer(tmp_path: Path, **kwargs) -> L.Trainer:
    options = dict(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        accelerator="cpu",
    )
    options.update(kwargs)
    return L.Trainer(**options)


def length_spread(order: list[int], lengths: list[int], batch_size: int) -> float:
    """Mean (longest - shortest) length within the batches `order` is cut into: the padding a batch carries."""
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)


def test_length_grouped_sampler_groups_and_covers() -> None:
    torch.manual_seed(0)
    lengths = torch.randint(1, 200, (1000,)).tolist()
    sampler = LengthGroupedSampler(lengths, batch_size=16, seed=1)
    order = list(sampler)
    assert sorted(order) == list(range(1000))
    spread = length_spread(order, lengths, 16)
    random_spread = length_spread(list(range(1000)), lengths, 16)
    assert spread < random_spread / 5  # padding waste cut by far more than half
    assert list(LengthGroupedSampler(lengths, 16, seed=1)) == order  # reproducible
    assert list(sampler) != order  # a new order for the next epoch


def test_group_by_length_pool_size_trades_padding_for_mixing(tiny_backbone, korsts_slice) -> None:
    """`group_by_length: N` cuts each batch from a pool of N batches: a small pool mixes lengths more than the
    default pool of 50 and less than a random order."""

    def spread(group_by_length: bool | int) -> float:
        data = TextDataModule(train=str(korsts_slice["train"]), columns=STS, batch_size=8, backbone=tiny_backbone,
                              objective="regression", max_length=48, cache_tokens=False,
                              group_by_length=group_by_length)  # fmt: skip
        data.setup("fit")
        lengths = data.datasets["train"].lengths
        loader = data.train_dataloader()
        order = list(loader.sampler)
        assert sorted(order) == list(range(len(lengths)))  # every row once, whatever the pool
        return length_spread(order, lengths, 8)

    assert spread(True) < spread(2) < spread(False)


@pytest.mark.parametrize("group_by_length", [True, False])
def test_training_order_follows_the_runs_seed(tiny_backbone, korsts_slice, group_by_length: bool) -> None:
    """The run's seed (`seed_everything`) picks the training order, as Hugging Face's `data_seed` defaults to its
    `seed`: runs over several seeds differ in their order, not only in their dropout; a restored checkpoint
    state brings back its run's order whatever the new process was seeded with."""

    def epochs(seed: int, state: dict | None = None) -> list[list[int]]:
        torch.manual_seed(seed)
        data = TextDataModule(train=str(korsts_slice["train"]), columns=STS, batch_size=8, backbone=tiny_backbone,
                              objective="regression", max_length=48, cache_tokens=False,
                              group_by_length=group_by_length)  # fmt: skip
        data.setup("fit")
        if state:
            data.load_state_dict(state)
        sampler = data.train_dataloader().sampler
        return [list(sampler), list(sampler)]

    first, second = epochs(0), epochs(1)
    assert first == epochs(0)
    assert first[0] != second[0] and first[1] != second[1]
    assert second[0] != first[1]  # seed 1's first epoch is not seed 0's second
    assert epochs(1, {"train_order": {"epoch": 0, "batches": 0}, "order_seed": 0}) == first


def test_cosent_prefers_correct_ranking() -> None:
    target = torch.tensor([0.1, 0.5, 0.9])
    right = cosent_loss(torch.tensor([0.0, 0.4, 0.8]), target)
    wrong = cosent_loss(torch.tensor([0.8, 0.4, 0.0]), target)
    assert right < wrong
    assert cosent_loss(torch.tensor([0.5, 0.5]), torch.tensor([0.3, 0.3])) == 0  # no ordered pairs: zero


@pytest.mark.parametrize(
    ("objective", "pair_encoding", "loss"),
    [("regression", "cross", "mse"), ("regression", "bi", "cosent"), ("regression", "cross", "smooth_l1")],
)
def test_regression_trains_and_scores(tiny_backbone, korsts_slice, tmp_path, objective, pair_encoding, loss):
    task, data = make(tiny_backbone, korsts_slice, STS, objective, pair_encoding, loss=loss)
    low, high = data.score_range
    assert 0.0 <= low < high <= 5.0
    trainer = quick_trainer(tmp_path)
    trainer.fit(task, data)
    metrics = trainer.callback_metrics
    assert {"val/pearson", "val/spearman", "train/loss"} <= set(metrics)
    # the logged Pearson is the one of the model's own validation outputs against the gold scores
    task.eval()
    val = data.datasets["val"]
    with torch.no_grad():
        outputs = torch.cat([task.model.to_outputs(task.model(data.collate([val[i]]))) for i in range(len(val))])
    gold = [ex.label for ex in data.examples["val"]]
    assert float(metrics["val/pearson"]) == pytest.approx(float(np.corrcoef(outputs.numpy(), gold)[0, 1]), abs=1e-4)


@pytest.mark.parametrize("pair_encoding", ["cross", "bi"])
def test_classification_trains(tiny_backbone, kornli_slice, tmp_path, pair_encoding):
    task, data = make(
        tiny_backbone,
        kornli_slice,
        NLI,
        "classification",
        pair_encoding,
        class_weights=[1.0, 2.0, 1.0],
        label_smoothing=0.1,
    )
    assert data.label_names == ["contradiction", "entailment", "neutral"]
    trainer = quick_trainer(tmp_path)
    trainer.fit(task, data)
    assert {"val/accuracy", "val/f1_macro"} <= set(trainer.callback_metrics)


def test_classifier_learns_a_learnable_rule(tiny_backbone, tmp_path):
    """A check that could fail: the loop must actually learn (sentences with 'good' vs 'bad')."""
    rows = ["text\tlabel"] + [f"this is {w} number {i}\t{w}" for i in range(40) for w in ("good", "bad")]
    train = tmp_path / "train.tsv"
    train.write_text("\n".join(rows) + "\n", encoding="utf-8")
    task, data = make(tiny_backbone, {"train": train, "val": train}, Columns(), "classification", lr=3e-3)
    trainer = quick_trainer(tmp_path, max_epochs=4)
    trainer.fit(task, data)
    assert float(trainer.callback_metrics["val/accuracy"]) > 0.95


def test_multilabel_single_text(tiny_backbone, tmp_path):
    rows = ["text,label"] + [f'item {i},"{"a,b" if i % 2 else "b"}"' for i in range(24)]
    train = tmp_path / "train.csv"
    train.write_text("\n".join(rows) + "\n", encoding="utf-8")
    task, data = make(tiny_backbone, {"train": train, "val": train}, Columns(), "multilabel")
    assert data.label_names == ["a", "b"]
    trainer = quick_trainer(tmp_path)
    trainer.fit(task, data)
    assert "val/f1_macro" in trainer.callback_metrics


def test_layer_wise_lr_decay_groups(tiny_backbone, korsts_slice, tmp_path):
    task, data = make(tiny_backbone, korsts_slice, STS, "regression", layer_lr_decay=0.5, head_lr=1e-2)
    trainer = quick_trainer(tmp_path, max_steps=1)
    trainer.fit(task, data)
    lrs = {}
    for name, p in task.model.named_parameters():
        for group in trainer.optimizers[0].param_groups:
            if any(p is q for q in group["params"]):
                lrs[name] = group["initial_lr"]
    assert lrs["head.weight"] == pytest.approx(1e-2)
    assert lrs["encoder.encoder.layer.1.output.dense.weight"] == pytest.approx(1e-3 * 0.5)
    assert lrs["encoder.encoder.layer.0.output.dense.weight"] == pytest.approx(1e-3 * 0.25)
    assert lrs["encoder.embeddings.word_embeddings.weight"] == pytest.approx(1e-3 * 0.125)


def test_embed_many_runs_match_one_text_at_a_time(tiny_backbone, korsts_slice):
    """Length-sorted runs (the CPU path of a bi-encoder batch) give each text the vector it gets alone, in the
    batches' order, and the grouping length of a pair is its longer text."""
    task, data = make(tiny_backbone, korsts_slice, STS, "regression", pair_encoding="bi")
    data.setup("fit")
    batch = next(iter(data.val_dataloader()))
    a, b = batch["a"], batch["b"]
    model = task.model.eval()
    with torch.no_grad():
        u, v = model.embed_pair(a, b)
        q, p, c = model.embed_many(a, b, {k: t[:1] for k, t in a.items()})  # a batch of one text too
        alone = [model.embed({k: t[i : i + 1, : int(x["attention_mask"][i].sum())] for k, t in x.items()})
                 for x in (a, b) for i in range(x["input_ids"].shape[0])]  # fmt: skip
    alone_u, alone_v = torch.cat(alone).split([len(u), len(v)])
    torch.testing.assert_close(u, alone_u, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(v, alone_v, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close((q, p, c[0]), (u, v, u[0]), atol=1e-5, rtol=1e-4)
    lengths = data.datasets["val"].lengths
    first = data.datasets["val"].features[0]
    assert lengths[0] == max(len(first["a"]["input_ids"]), len(first["b"]["input_ids"]))


def test_freeze_embeddings(tiny_backbone, korsts_slice):
    task, _ = make(tiny_backbone, korsts_slice, STS, "regression", freeze_embeddings=True)
    assert not task.model.encoder.embeddings.word_embeddings.weight.requires_grad
    assert task.model.encoder.encoder.layer[0].output.dense.weight.requires_grad


def test_backbone_config_overrides(tiny_backbone, korsts_slice):
    task, _ = make(
        tiny_backbone, korsts_slice, STS, "regression", backbone_config={"attention_probs_dropout_prob": 0.0}
    )
    assert task.model.encoder.config.attention_probs_dropout_prob == 0.0
    assert task.model.encoder.config.hidden_dropout_prob == 0.1  # the rest as the backbone has it
    with pytest.raises(ValueError, match="has no setting 'attention_dropout'"):
        make(tiny_backbone, korsts_slice, STS, "regression", backbone_config={"attention_dropout": 0.0})


def test_freeze_layers_trains_only_what_is_above(tiny_backbone, korsts_slice, tmp_path):
    task, data = make(tiny_backbone, korsts_slice, STS, "regression", "bi", freeze_layers=1)
    layers = task.model.encoder.encoder.layer
    assert len(layers) > 1
    before = {n: p.detach().clone() for n, p in task.model.named_parameters()}
    quick_trainer(tmp_path, max_steps=2, limit_val_batches=0).fit(task, datamodule=data)
    changed = {n for n, p in task.model.named_parameters() if not torch.equal(p, before[n])}
    frozen = {n for n, p in task.model.named_parameters() if not p.requires_grad}
    assert frozen and not changed & frozen
    assert {n for n in frozen if ".layer." in n} == {n for n in before if ".layer.0." in n}
    assert any(".layer.1." in n for n in changed)
    with pytest.raises(ValueError, match="freeze_layers=99"):
        make(tiny_backbone, korsts_slice, STS, "regression", freeze_layers=99)


@pytest.mark.parametrize(
    ("columns", "objective", "files", "pair_encoding"),
    [
        (STS, "regression", "korsts_slice", "bi"),
        (NLI, "classification", "kornli_slice", "cross"),
    ],
)
def test_export_matches_checkpoint(tiny_backbone, request, tmp_path, columns, objective, files, pair_encoding):
    files = request.getfixturevalue(files)
    task, data = make(tiny_backbone, files, columns, objective, pair_encoding)
    trainer = quick_trainer(tmp_path, enable_checkpointing=True, max_steps=2)
    trainer.fit(task, data)
    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt)
    out = export_checkpoint(ckpt, tmp_path / "export")
    assert {"config.json", "model.safetensors", "n2m.json", "tokenizer.json"} <= {p.name for p in out.iterdir()}

    predictor = Predictor.from_pretrained(out)
    examples = data.examples["val"]
    inputs = [(ex.text, ex.text_pair) for ex in examples]
    exported = predictor.predict_outputs(inputs, batch_size=5)
    data.setup("validate")
    task.eval()
    with torch.no_grad():
        reference = torch.cat(
            [
                task.model.to_outputs(task.model(batch))
                for batch in (data.collate([data.datasets["val"][i]]) for i in range(len(examples)))
            ]
        )
    assert (exported - reference).abs().max() <= 1e-4
    results = predictor.predict(inputs[:3])
    if objective == "regression":  # `predict` gives the same scores as the raw outputs, on the data's scale
        assert [r.score for r in results] == pytest.approx(exported[:3].tolist(), abs=1e-5)
    else:
        labels = predictor.card.labels
        assert [r.label for r in results] == [labels[i] for i in exported[:3].argmax(-1).tolist()]
        assert sum(results[0].probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_init_from_keeps_encoder_and_renews_head(tiny_backbone, kornli_slice, korsts_slice, tmp_path):
    nli, nli_data = make(tiny_backbone, kornli_slice, NLI, "classification")
    trainer = quick_trainer(tmp_path, max_steps=2)
    trainer.fit(nli, nli_data)
    ckpt = tmp_path / "nli.ckpt"
    trainer.save_checkpoint(ckpt)
    sts, _ = make(tiny_backbone, korsts_slice, STS, "regression", init_from=str(ckpt))
    a = nli.model.encoder.encoder.layer[1].output.dense.weight
    b = sts.model.encoder.encoder.layer[1].output.dense.weight
    assert torch.equal(a, b)
    assert sts.model.head.weight.shape == (1, 32)


def test_init_from_matches_embeddings_by_piece_across_vocabularies(tiny_backbone, kornli_slice, tmp_path):
    """Two vocabulary-trimmed backbones number their pieces differently: each piece takes the source's row for
    it, and a piece the source lacks keeps the target's own."""
    nli, nli_data = make(tiny_backbone, kornli_slice, NLI, "classification", "bi")
    trainer = quick_trainer(tmp_path, max_steps=2)
    trainer.fit(nli, nli_data)
    trainer.save_checkpoint(tmp_path / "nli.ckpt")

    vocab = AutoTokenizer.from_pretrained(tiny_backbone).get_vocab()
    pieces = sorted(vocab, key=vocab.get)
    ours = pieces[:104] + pieces[:103:-1][:2000] + ["zzqq"]  # special pieces first, then reversed, then a new one
    target = tmp_path / "target"
    BertTokenizer(vocab={piece: i for i, piece in enumerate(ours)}).save_pretrained(target)
    config = BertConfig.from_pretrained(tiny_backbone, vocab_size=len(ours))
    torch.manual_seed(1)
    BertModel(config, add_pooling_layer=False).save_pretrained(target)

    spec = DataSpec(
        "N21", "regression", ["text", "text_pair"], tiny_backbone, str(target), settings={"pair_encoding": "bi"}
    )
    sts = SequenceTask(spec=spec, optimization=Optimization(init_from=str(tmp_path / "nli.ckpt")))
    source_rows = nli.model.encoder.get_input_embeddings().weight
    rows = sts.model.encoder.get_input_embeddings().weight
    for piece in ("[CLS]", pieces[-1500], pieces[-1]):
        assert torch.equal(rows[ours.index(piece)], source_rows[vocab[piece]])
    own_rows = BertModel.from_pretrained(target).get_input_embeddings().weight
    assert torch.equal(rows[-1], own_rows[-1])


def test_predictor_rejects_bad_inputs(tiny_backbone, korsts_slice, tmp_path):
    task, data = make(tiny_backbone, korsts_slice, STS, "regression", "bi")
    trainer = quick_trainer(tmp_path, max_steps=1)
    trainer.fit(task, data)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    predictor = Predictor.from_pretrained(export_checkpoint(tmp_path / "m.ckpt", tmp_path / "out"))
    with pytest.raises(ValueError, match="input 0: expected 2 text"):
        predictor.predict(["only one"])
    with pytest.raises(ValueError, match=r"missing field\(s\) \['text_pair'\]"):
        predictor.predict([{"text": "a"}])
    assert len(predictor.predict([{"text": "a", "text_pair": "b"}, ("c", "d")])) == 2
