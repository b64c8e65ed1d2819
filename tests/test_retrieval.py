"""The retrieval objective (issue 18): in-batch negatives, batches without repeated texts, ranked evaluation
(MRR@10, Recall@1/10, nDCG@10 through torchmetrics), on e5-small and a slice of the committed FAQ split."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch import Trainer

from n2m.core.export import export_checkpoint
from n2m.core.predictor import Predictor
from n2m.shapes.n21.data import DistinctKeysBatchSampler, TextDataModule
from n2m.shapes.n21.losses import multiple_negatives_ranking_loss
from n2m.shapes.n21.metrics import build_metrics, ranking_candidates
from n2m.shapes.n21.task import SequenceTask

ROOT = Path(__file__).resolve().parents[1]
FAQ = ROOT / "data/korean_chatbot/faq"


def test_loss_by_hand() -> None:
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[2.0, 0.0], [1.0, 1.0]])  # not unit length: the loss normalizes
    c = 1 / math.sqrt(2)
    forward = (-math.log(math.e / (math.e + math.exp(c))) - math.log(math.exp(c) / (1 + math.exp(c)))) / 2
    assert float(multiple_negatives_ranking_loss(q, p, temperature=1.0)) == pytest.approx(forward, abs=1e-6)
    backward = (-math.log(math.e / (math.e + 1)) - math.log(0.5)) / 2  # passage → query: columns as rows
    both = multiple_negatives_ranking_loss(q, p, temperature=1.0, symmetric=True)
    assert float(both) == pytest.approx((forward + backward) / 2, abs=1e-6)
    hard = torch.tensor([[1.0, 0.1]])  # a hard negative near query 0 makes its loss larger
    assert multiple_negatives_ranking_loss(q, torch.cat([p, hard])) > multiple_negatives_ranking_loss(q, p)


@pytest.mark.parametrize("depth", [2, 10])
def test_ranking_metrics_by_hand(depth: int) -> None:
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.3], [0.2, 0.1, 0.7, 0.6]])
    relevant = [[1], [2, 0]]
    # query 0: its document ranks 2nd. query 1: its two rank 1st and 3rd.
    ndcg0 = 1 / math.log2(3)
    ndcg1 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    metrics = build_metrics("retrieval", 1)
    preds, target, indexes = ranking_candidates(scores, relevant, depth)  # depth 2: the same, from fewer rows
    metrics.update(preds, target, indexes=indexes)
    got = {k: float(v) for k, v in metrics.compute().items()}
    assert got == pytest.approx({"mrr10": 0.75, "recall1": 0.25, "recall10": 1.0, "ndcg10": (ndcg0 + ndcg1) / 2})


def test_batches_never_repeat_a_text() -> None:
    keys = [{"q0", "a"}, {"q1", "a"}, {"q2", "b"}, {"q3", "a"}, {"q4", "c"}, {"q5", "d"}, {"q6", "b"}]
    sampler = DistinctKeysBatchSampler(range(len(keys)), keys, batch_size=3)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(keys)))
    assert len(batches) == len(sampler)
    for batch in batches:
        seen = [k for i in batch for k in keys[i]]
        assert len(seen) == len(set(seen)), batch
    assert [len(b) for b in batches[:-1]] == [3] * (len(batches) - 1)


def faq_slice(tmp_path: Path, rows: int) -> Path:
    lines = (FAQ / "train.tsv").read_text(encoding="utf-8").splitlines()
    target = tmp_path / "faq.tsv"
    target.write_text("\n".join(lines[: rows + 1]) + "\n", encoding="utf-8")
    return target


@pytest.mark.e2e  # e5-small trimmed, 2 epochs of 16 pairs: about 1 min alone, 3–4 on a shared CPU
def test_retrieval_trains_ranks_and_exports(tmp_path: Path) -> None:
    torch.manual_seed(0)
    train = faq_slice(tmp_path, 16)
    data = TextDataModule(
        train=str(train), val=str(train),  # ranked against its own answers: training must lift MRR
        columns={"text": "question", "text_pair": "answer", "label": None},
        objective="retrieval", pair_encoding="bi", backbone="e5-small", trim_vocab=True,
        text_prefix="query: ", passage_prefix="passage: ", batch_size=8, max_length=32, cache_tokens=False,
    )  # fmt: skip
    task = SequenceTask.from_data(data, temperature=0.05, optimization={"lr": 1e-4, "warmup_ratio": 0.0})
    trainer = Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)  # fmt: skip
    before = trainer.validate(task, datamodule=data, verbose=False)[0]
    assert set(before) == {"val/mrr10", "val/recall1", "val/recall10", "val/ndcg10", "val/loss"}
    assert all(0.0 <= before[k] <= 1.0 for k in before if k != "val/loss")
    data.setup("fit")
    for batch in data.train_dataloader():  # no text twice in a batch
        texts = [
            t for ex in (data.examples["train"][i] for i in batch["index"].tolist()) for t in (ex.text, ex.text_pair)
        ]
        assert len(texts) == len(set(texts))
    order = [b["index"].tolist() for b in data.train_dataloader()]
    data.load_state_dict({"train_order": {"epoch": 0, "batches": 1}})  # a run resumed after its first batch
    assert [b["index"].tolist() for b in data.train_dataloader()] == order[1:]
    trainer.fit(task, datamodule=data)
    after = trainer.validate(task, datamodule=data, verbose=False)[0]
    assert after["val/loss"] < before["val/loss"]
    assert after["val/mrr10"] >= before["val/mrr10"]

    checkpoint = tmp_path / "model.ckpt"
    trainer.save_checkpoint(checkpoint)
    folder = export_checkpoint(checkpoint, tmp_path / "export", vocab="trained")  # the small table: quick
    predictor = Predictor.from_pretrained(folder)
    assert predictor.card.task == "retrieval" and predictor.card.settings["passage_prefix"] == "passage: "
    question, answer = data.examples["train"][0].text, data.examples["train"][0].text_pair
    vectors = predictor.encode([question, answer], kind="query")
    task.model.eval()
    with torch.inference_mode():
        ids = data.tokenizer(["query: " + question, "query: " + answer], padding=True, return_tensors="pt")
        own = F.normalize(task.model.embed(dict(ids)), dim=-1).numpy()
    np.testing.assert_allclose(vectors, own, atol=1e-4)
    # a pair's score is the cosine of the query's and the passage's vectors
    passage = predictor.encode([answer], kind="passage")[0]
    assert predictor.predict([(question, answer)])[0].score == pytest.approx(float(vectors[0] @ passage), abs=1e-4)
