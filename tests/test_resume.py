"""Interrupted training, for real: a `n2m fit` subprocess killed (SIGKILL) or stopped (SIGTERM) mid-epoch and
resumed with `--ckpt_path last` ends with the weights, the batches and the validation scores of an uninterrupted
run with the same seed. Dropout stays on (the tiny backbone's 0.1): that the weights agree shows the random state
was restored, and a resume without it is checked to disagree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from n2m.cli import EXIT_INTERRUPTED, main
from n2m.core.callbacks import RNG_KEY

ROOT = Path(__file__).resolve().parents[1]
STEPS_PER_EPOCH = 8  # 64 rows / batch 8
EVERY_STEPS = 3  # the configured interval: periodic checkpoints at steps 3, 6, 9, 12, 15
STOP_AT = 14  # mid-epoch 2 (batch 6 of 8); the last periodic checkpoint before it: step 12


class Record(Callback):
    """Appends each training batch's row indices (by global step) and each validation's scores to a JSONL file."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def write(self, **row: Any) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # type: ignore[override]
        self.write(step=trainer.global_step, index=batch["index"].tolist())

    def on_validation_end(self, trainer, pl_module) -> None:  # type: ignore[override]
        if not trainer.sanity_checking:
            scores = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
            self.write(epoch=trainer.current_epoch, val=scores)


class StallAtStep(Callback):
    """Stands still before step `step` trains, saying so in `marker`, until SIGTERM (or SIGKILL) comes."""

    def __init__(self, step: int, marker: str) -> None:
        self.step = step
        self.marker = Path(marker)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # type: ignore[override]
        if trainer.global_step != self.step:
            return
        self.marker.write_text("stalled", encoding="utf-8")
        deadline = time.monotonic() + 120
        while not trainer.received_sigterm and time.monotonic() < deadline:
            time.sleep(0.02)


def callback(cls: type, **init_args: Any) -> str:
    return json.dumps({"class_path": f"test_resume.{cls.__name__}", "init_args": init_args})


def fit_args(backbone: str, files: dict[str, Path], root: Path, record: Path, *extra: str) -> list[str]:
    return [
        "fit", "--config", str(ROOT / "recipes/korsts.yaml"), "--data.backbone", backbone,
        "--data.train", str(files["train"]), "--data.val", str(files["val"]), "--data.test", str(files["test"]),
        "--data.batch_size", "8", "--data.max_length", "32", "--data.cache_tokens", "false",
        "--data.trim_vocab", "false", "--model.optimization.lr", "1e-3", "--trainer.max_epochs", "2",
        "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
        "--trainer.num_sanity_val_steps", "0", "--test_after_fit", "false",
        "--checkpoint_every.minutes", "null", "--checkpoint_every.steps", str(EVERY_STEPS),
        "--trainer.callbacks+", callback(Record, path=str(record)), *extra,
    ]  # fmt: skip


def read_records(path: Path) -> tuple[dict[int, list[int]], dict[int, dict[str, float]]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    batches = {r["step"]: r["index"] for r in rows if "step" in r}
    scores = {r["epoch"]: r["val"] for r in rows if "val" in r}
    return batches, scores


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def uninterrupted(backbone: str, files: dict[str, Path], root: Path, *extra: str) -> dict[str, Any]:
    """A run from start to end: its last checkpoint's model (`weights`; with a weight average, the average) and
    trained weights (`trained`, where a weight average keeps them apart), the batch of each step, each epoch's
    validation scores."""
    main(fit_args(backbone, files, root, root / "record.jsonl", *extra))
    batches, scores = read_records(root / "record.jsonl")
    last = torch.load(root / "checkpoints/last.ckpt", weights_only=True)
    return {"weights": last["state_dict"], "trained": last.get("current_model_state"), "batches": batches,
            "scores": scores}  # fmt: skip


def assert_same_weights(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> None:
    assert ours.keys() == theirs.keys()
    for name, tensor in ours.items():
        assert torch.allclose(tensor, theirs[name], rtol=1e-4, atol=1e-6), name


@pytest.fixture(scope="module")
def reference(tiny_backbone, korsts_slice, tmp_path_factory) -> dict[str, Any]:
    """The uninterrupted run: 2 epochs, 16 steps, dropout on."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_backbone)
    assert config.hidden_dropout_prob > 0 and config.attention_probs_dropout_prob > 0  # what the test is about
    run = uninterrupted(tiny_backbone, korsts_slice, tmp_path_factory.mktemp("reference"))
    assert sorted(run["batches"]) == list(range(2 * STEPS_PER_EPOCH)) and sorted(run["scores"]) == [0, 1]
    return run


def interrupted_fit(args: list[str], root: Path, sig: signal.Signals) -> subprocess.CompletedProcess:
    """Run `n2m fit` in a subprocess, wait until it stands before step STOP_AT, and send it `sig`."""
    marker = root / "stalled"
    command = [sys.executable, "-m", "n2m.cli", *args, "--trainer.callbacks+",
               callback(StallAtStep, step=STOP_AT, marker=str(marker))]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), process.communicate()[1][-3000:] if process.poll() is not None else "never stalled"
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def resume_and_compare(args: list[str], tmp_path: Path, reference: dict[str, Any], from_step: int) -> None:
    """Resume with `--ckpt_path last` in this process: the same batches from `from_step` on, the same weights
    and the same validation scores as the uninterrupted run."""
    record = tmp_path / "record.jsonl"
    record.unlink()
    main([*args, "--ckpt_path", "last"])
    batches, scores = read_records(record)
    assert sorted(batches) == list(range(from_step, 2 * STEPS_PER_EPOCH))  # it took up where the checkpoint was
    assert batches == {step: reference["batches"][step] for step in batches}  # the very same batches
    assert scores.keys() == {1}
    assert scores[1] == pytest.approx(reference["scores"][1], rel=1e-4, abs=1e-6)
    assert_same_weights(weights(tmp_path / "run/checkpoints/last.ckpt"), reference["weights"])


def test_sigkill_mid_epoch_resumes_as_if_uninterrupted(tiny_backbone, korsts_slice, tmp_path, reference):
    root = tmp_path / "run"
    args = fit_args(tiny_backbone, korsts_slice, root, tmp_path / "record.jsonl")
    killed = interrupted_fit(args, tmp_path, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL

    last = torch.load(root / "checkpoints/last.ckpt", weights_only=True)
    assert last["global_step"] % STEPS_PER_EPOCH != 0  # written mid-epoch by the periodic checkpoint
    assert STOP_AT - EVERY_STEPS <= last["global_step"] < STOP_AT  # lost at most the configured interval
    step = last["global_step"]

    # The control: the same checkpoint without its random state resumes to other weights (dropout draws differ).
    control = tmp_path / "control"
    (control / "checkpoints").mkdir(parents=True)
    torch.save({k: v for k, v in last.items() if k != RNG_KEY}, control / "checkpoints/last.ckpt")
    main([*fit_args(tiny_backbone, korsts_slice, control, tmp_path / "control.jsonl"), "--ckpt_path", "last"])
    drifted = weights(control / "checkpoints/last.ckpt")
    assert any(not torch.allclose(drifted[k], v, rtol=1e-4, atol=1e-6) for k, v in reference["weights"].items())

    resume_and_compare(args, tmp_path, reference, from_step=step)


def test_sigterm_saves_and_exits_cleanly(tiny_backbone, korsts_slice, tmp_path, reference):
    root = tmp_path / "run"
    args = fit_args(tiny_backbone, korsts_slice, root, tmp_path / "record.jsonl")
    stopped = interrupted_fit(args, tmp_path, signal.SIGTERM)
    assert stopped.returncode == EXIT_INTERRUPTED, stopped.stderr[-3000:]
    assert "Traceback" not in stopped.stderr
    assert "--ckpt_path last" in stopped.stderr

    # The step that was under way when SIGTERM came finished, and was saved: nothing is lost.
    assert torch.load(root / "checkpoints/last.ckpt", weights_only=True)["global_step"] == STOP_AT + 1
    resume_and_compare(args, tmp_path, reference, from_step=STOP_AT + 1)


AVERAGED = (
    "--trainer.callbacks+",
    json.dumps({"class_path": "n2m.core.averaging.WeightEMA", "init_args": {"decay": 0.9}}),
)


@pytest.fixture(scope="module")
def averaged_reference(tiny_backbone, korsts_slice, tmp_path_factory) -> dict[str, Any]:
    """The uninterrupted run with a moving average of the weights (`WeightEMA`)."""
    return uninterrupted(tiny_backbone, korsts_slice, tmp_path_factory.mktemp("averaged"), *AVERAGED)


def test_a_resumed_run_continues_its_weight_average(tiny_backbone, korsts_slice, tmp_path, averaged_reference):
    """The average (what validation scores and the checkpoint's model is) and the trained weights both continue
    as in the uninterrupted run: the average's count of steps is part of the checkpoint."""
    root = tmp_path / "run"
    args = fit_args(tiny_backbone, korsts_slice, root, tmp_path / "record.jsonl", *AVERAGED)
    stopped = interrupted_fit(args, tmp_path, signal.SIGTERM)
    assert stopped.returncode == EXIT_INTERRUPTED, stopped.stderr[-3000:]
    resume_and_compare(args, tmp_path, averaged_reference, from_step=STOP_AT + 1)
    trained = torch.load(root / "checkpoints/last.ckpt", weights_only=True)["current_model_state"]
    assert_same_weights(trained, averaged_reference["trained"])
    assert any(not torch.equal(averaged_reference["trained"][k], v) for k, v in averaged_reference["weights"].items())
