"""`n2m.core.averaging.WeightEMA` in a real `n2m fit`: the checkpoint's model is the bias-corrected exponential
average of every step's weights (the trained weights beside it, to resume from), and the test after fit scores
that average. (`test_cli.py` checks Lightning's own `EMAWeightAveraging` through the same path.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from n2m.cli import main
from n2m.core.averaging import WeightEMA, update_weight

ROOT = Path(__file__).resolve().parents[1]
DECAY = 0.9


class Trajectory(Callback):
    """Saves the trained weights after every optimizer step, and the weights the test runs with."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.steps: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, *_) -> None:  # type: ignore[override]
        self.steps.append({k: v.detach().clone() for k, v in pl_module.state_dict().items()})

    def on_test_start(self, trainer, pl_module) -> None:  # type: ignore[override]
        tested = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        torch.save({"steps": self.steps, "tested": tested}, self.path)


@pytest.fixture(scope="module")
def averaged_run(tiny_backbone, korsts_slice, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ema")
    callbacks = [
        {"class_path": "n2m.core.averaging.WeightEMA", "init_args": {"decay": DECAY}},
        {"class_path": "test_weight_averaging.Trajectory", "init_args": {"path": str(root / "t.pt")}},
    ]
    main([
        "fit", "--config", str(ROOT / "recipes/korsts.yaml"), "--data.backbone", tiny_backbone,
        "--data.train", str(korsts_slice["train"]), "--data.val", str(korsts_slice["val"]),
        "--data.test", str(korsts_slice["test"]), "--data.batch_size", "8", "--data.max_length", "32",
        "--data.cache_tokens", "false", "--data.trim_vocab", "false", "--model.optimization.lr", "1e-3",
        "--trainer.max_epochs", "2", "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar",
        "false", "--trainer.num_sanity_val_steps", "0", "--trainer.callbacks", json.dumps(callbacks),
    ])  # fmt: skip
    return root


def test_the_checkpoint_holds_the_bias_corrected_average_of_every_step(averaged_run):
    steps = torch.load(averaged_run / "t.pt", weights_only=True)["steps"]
    assert len(steps) == 16  # 64 rows / batch 8, 2 epochs
    # step k of t weighs DECAY^(t-k), normalized over the steps taken
    norm = sum(DECAY**k for k in range(len(steps)))
    expected = {
        name: sum(DECAY ** (len(steps) - 1 - k) * step[name] for k, step in enumerate(steps)) / norm
        for name, tensor in steps[0].items()
        if tensor.is_floating_point()
    }
    last = torch.load(averaged_run / "checkpoints/last.ckpt", weights_only=True)
    assert set(expected) <= set(last["state_dict"])
    for name, tensor in expected.items():
        assert torch.allclose(last["state_dict"][name], tensor, rtol=1e-4, atol=1e-6), name
        assert torch.equal(last["current_model_state"][name], steps[-1][name]), name  # to resume from
    moved = [n for n, t in expected.items() if not torch.allclose(t, steps[-1][n])]
    assert len(moved) > len(expected) // 2  # the average is not the last step's weights


def test_the_test_after_fit_scores_the_chosen_average(averaged_run):
    tested = torch.load(averaged_run / "t.pt", weights_only=True)["tested"]
    results = json.loads((averaged_run / "results.json").read_text(encoding="utf-8"))
    chosen = torch.load(results["best_checkpoint"], weights_only=True)
    for name, tensor in chosen["state_dict"].items():
        assert torch.equal(tested[name], tensor), name
    assert any(not torch.equal(tested[n], t) for n, t in chosen["current_model_state"].items())


def test_a_long_run_weighs_its_first_step_as_little_as_a_plain_ema():
    # after 1,872 steps at 0.995 (the captioning recipe), the correction is below 1e-4 of each step's share
    assert update_weight(0.995, 0) == 1.0  # the first update copies
    assert update_weight(0.995, 1) == pytest.approx(1 / 1.995)
    assert update_weight(0.995, 1871) == pytest.approx(0.005, rel=1e-4)


def test_a_decay_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match=r"decay=1\.5"):
        WeightEMA(1.5)
