"""The `n2m` command: `fit | validate | test | predict` through LightningCLI, plus `export`.

n2m fit --config recipes/korsts.yaml
n2m fit --config recipes/korsts.yaml --ckpt_path last        # resume an interrupted run (or a SIGTERMed one)
n2m test --config recipes/korsts.yaml --ckpt_path runs/korsts/checkpoints/last.ckpt
n2m predict --config recipes/korsts.yaml --ckpt_path ... --data.predict in.tsv --output out.csv
n2m predict --model out/korsts --input in.tsv --output out.csv --column text=sentence1 --column text_pair=sentence2
n2m export runs/korsts out/korsts [--onnx] [--quantize int8] [--vocab trained]
n2m serve out/korsts [--port 8000] [--backend torch|onnx]     # JSON API, web page, metrics
n2m report runs/korsts                                        # report.html: curves, test predictions in pictures
n2m bench [--quick] [--override data.backbone=minilm-l6]      # every Korean recipe → one leaderboard (n2m.bench)
n2m encode | search | mine MODEL ...                          # sentence vectors (n2m.shapes.n21.search)
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, WeightAveraging
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from n2m.allocator import fix_mmap_threshold
from n2m.backbones import BackboneError
from n2m.core.callbacks import (
    CheckpointEvery,
    PredictionFileWriter,
    ResumableCheckpoint,
    default_callbacks,
    default_loggers,
)
from n2m.errors import ConfigError, DataError
from n2m.provenance import machine_description, today
from n2m.registry import SHAPES, get_shape
from n2m.report import report_part, write_report

if TYPE_CHECKING:
    from n2m.core.predictor import Precision

EXIT_INTERRUPTED = 75  # sysexits' EX_TEMPFAIL: stopped before the end, resumable; run it again


class N2MCLI(LightningCLI):
    """LightningCLI for one shape; `main` picks the shape's task and DataModule from the recipe's `shape:` key
    (N21 by default)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--shape", default="N21", help=f"the task's shape: one of {sorted(SHAPES)}")
        # the data is the one home of the backbone, the labels and the encoding: the model is built from its spec
        parser.link_arguments("data.spec", "model.spec", apply_on="instantiate")
        parser.add_argument("--output", default=None, help="predict: file to write (.csv or .jsonl)")
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=True,
            help="fit: score the best checkpoint (chosen on validation) on the test split once, at the end",
        )
        parser.add_argument(
            "--mmap_threshold_mb",
            type=float,
            default=4.0,
            help="fit: tensors of this size or more are mmapped and go back to the OS when freed (not while a model "
            "generates); lower: less peak memory, slower steps; 0: glibc's own dynamic threshold (see n2m.allocator)",
        )
        parser.add_argument(
            "--progress_every",
            type=int,
            default=50,
            help="fit: without a terminal (a log file, CI), print a line every N optimizer steps (step, loss, speed, "
            "time left) instead of a progress bar; 0: none",
        )
        parser.add_argument(
            "--checkpoint_every",
            type=CheckpointEvery,
            default=CheckpointEvery(),
            help="fit: write a resumable <root>/checkpoints/last.ckpt every `minutes` of training and/or every "
            "`steps` optimizer steps (null: off), besides each epoch's end and SIGTERM",
        )

    def setting(self, key: str, config: Any = None) -> Any:
        """A value of this subcommand's parsed (or instantiated) config."""
        config = self.config if config is None else config
        return (config[self.subcommand] if self.subcommand else config).get(key)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        config = self.setting("trainer", self.config_init) or {}
        root = config.get("default_root_dir") or os.getcwd()
        callbacks = list(config.get("callbacks") or [])
        refuse_averaged_buffers(self.setting("trainer").get("callbacks"))
        every = self.setting("checkpoint_every", self.config_init)
        if not any(isinstance(c, ModelCheckpoint) for c in callbacks):
            has_bar = any(isinstance(c, ProgressBar) for c in callbacks) or config.get("enable_progress_bar") is False
            lines = self.setting("progress_every")
            kwargs["callbacks"] = callbacks + default_callbacks(
                self.model, root, not has_bar, every, progress_every=lines
            )
        elif not any(isinstance(c, ResumableCheckpoint) for c in callbacks):  # a recipe's own checkpoints
            kwargs["callbacks"] = [*callbacks, ResumableCheckpoint(os.path.join(root, "checkpoints"), every)]
        if config.get("logger") in (None, True):
            kwargs["logger"] = default_loggers(root)
        return super().instantiate_trainer(**kwargs)

    def before_fit(self) -> None:
        self._fit_started = time.time()
        threshold_mb = self.setting("mmap_threshold_mb")
        if threshold_mb:  # activations freed every step go back to the OS (see n2m.allocator)
            fix_mmap_threshold(int(threshold_mb * (1 << 20)))

    def after_fit(self) -> None:
        """The test split is scored once, with the checkpoint validation chose, and written down."""
        if not self.setting("test_after_fit") or not self.datamodule.has_split("test"):
            self.write_report()
            return
        callback = self.trainer.checkpoint_callback
        best = getattr(callback, "best_model_path", "") or None
        # With EMA or SWA, a checkpoint's model is the average, and the raw weights ride beside it for resuming;
        # the callback would load those raw weights back, so it leaves before the averaged model is tested.
        self.trainer.callbacks = [c for c in self.trainer.callbacks if not isinstance(c, WeightAveraging)]
        from n2m.core.callbacks import TEST_PREDICTIONS, TestPredictionWriter

        if report_part(self.model.spec.shape).predictions == TEST_PREDICTIONS:  # N2M's task writes its own
            self.trainer.callbacks.append(TestPredictionWriter(self.trainer.default_root_dir))
        metrics = self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or "last")
        if self.trainer.is_global_zero:
            report = {
                "test": metrics[0] if metrics else {},
                "best_checkpoint": best,
                "best_val": {callback.monitor: float(callback.best_model_score)} if best else None,
                "epochs": self.trainer.current_epoch,
                "fit_wall_s": round(time.time() - self._fit_started, 1),
                "machine": machine_description(),
                "date": today(),
            }
            path = Path(self.trainer.default_root_dir) / "results.json"
            path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
            print(f"test metrics of {best or 'the last checkpoint'} written to {path}")
        self.write_report()

    def write_report(self) -> None:
        """`report.html` beside results.json (as `n2m report` writes it); a failure costs the report, not the run."""
        root = self.trainer.default_root_dir
        if not self.trainer.is_global_zero:
            return
        try:
            print(f"report written to {write_report(root)}")
        except Exception as err:
            print(f"n2m: no report ({type(err).__name__}: {err}); `n2m report {root}` tries again", file=sys.stderr)

    def before_predict(self) -> None:
        output = self.setting("output")
        if not output:
            raise SystemExit("n2m predict: pass --output FILE (.csv or .jsonl) to say where predictions go")
        self.trainer.callbacks.append(PredictionFileWriter(output))


def refuse_averaged_buffers(callbacks: Any) -> None:
    """A weight-averaging callback must leave the buffers to the trained model (batch norm's statistics follow
    it): averaging them too (Lightning's default) also averages integer buffers such as position ids, and made the
    in-process test disagree with the saved checkpoint when we tried it. n2m's `WeightEMA` never averages them."""
    for entry in callbacks or []:
        class_path = str(entry.get("class_path", "")) if hasattr(entry, "get") else ""
        module, _, name = class_path.rpartition(".")
        if not module:
            continue
        found = getattr(importlib.import_module(module), name, None)
        if not (isinstance(found, type) and issubclass(found, WeightAveraging)):
            continue
        default = inspect.signature(found).parameters.get("use_buffers")
        if (entry.get("init_args") or {}).get("use_buffers", default.default if default else False):
            raise ConfigError(f"{name}: set `use_buffers: false` (n2m averages weights only), or use "
                              "n2m.core.averaging.WeightEMA")  # fmt: skip


def _export(argv: list[str]) -> None:
    from n2m.core.export import chosen_checkpoint, export_checkpoint

    parser = argparse.ArgumentParser(prog="n2m export", description="Checkpoint → self-contained model folder.")
    parser.add_argument("checkpoint", help="a run folder (the checkpoint its validation chose) or a .ckpt file")
    parser.add_argument("out_dir")
    parser.add_argument("--onnx", action="store_true", help="also write model.onnx, for `n2m serve --backend onnx`")
    parser.add_argument("--quantize", choices=["int8"], default=None, help="also write model.int8.onnx (dynamic)")
    parser.add_argument("--vocab", choices=["full", "trained"], default="full",
                        help="a model trained on a trimmed vocabulary: its rows back in the backbone's full table "
                             "(default), or only the trained pieces (smaller; other text reads worse)")  # fmt: skip
    parser.add_argument("--title", default=None, help="the model's name on its page (default: the run's folder)")
    args = parser.parse_args(argv)
    if args.vocab == "trained":
        print("n2m export: --vocab trained: text outside the training files loses pieces to <unk> or smaller ones; "
              "see benchmarks/results/vocab_generalization.json for what that cost", file=sys.stderr)  # fmt: skip
    checkpoint = chosen_checkpoint(args.checkpoint)
    out = export_checkpoint(checkpoint, args.out_dir, vocab=args.vocab, title=args.title)
    print(f"exported {checkpoint} to {out}")
    if args.onnx or args.quantize:
        from n2m.shapes.n21.onnx import export_onnx

        for path in export_onnx(out, quantize=args.quantize):
            print(f"wrote {path}")


def _predict_exported(argv: list[str]) -> None:
    """`n2m predict --model FOLDER --input FILE --output FILE`: an exported model over a file, no recipe. The
    input's columns are the model's inputs (`text`, `text_pair`), or say which with `--column text=sentence1`.
    A captioner takes a folder of images, a text file listing image paths, or a table whose `image` column holds
    paths (relative to the file); each output row's `id` is the image's path."""
    from n2m.core.card import ModelCard
    from n2m.core.predictor import precision_argument
    from n2m.readers import read_records
    from n2m.shapes.n2m.images import ImageError, image_inputs

    parser = argparse.ArgumentParser(prog="n2m predict --model", description=_predict_exported.__doc__)
    parser.add_argument("--model", required=True, help="a folder written by `n2m export`")
    parser.add_argument("--input", required=True, help="CSV, TSV, JSONL or JSON with a column per model input")
    parser.add_argument("--output", required=True, help="file to write (.csv or .jsonl)")
    parser.add_argument("--column", action="append", default=[], metavar="INPUT=COLUMN",
                        help="the input file's column for one of the model's inputs, e.g. text=sentence1")  # fmt: skip
    parser.add_argument("--id", default=None, help="a column to copy into the output as `id` (else the row number)")
    parser.add_argument("--batch-size", type=int, default=None)
    precision_argument(parser)
    args = parser.parse_args(argv)
    renames = dict(item.split("=", 1) for item in args.column if "=" in item)
    try:
        card = ModelCard.load(args.model)
    except Exception:  # loading the predictor says what is wrong with the folder
        card = None
    tables = (".csv", ".tsv", ".jsonl", ".json")
    if card is not None and card.inputs == ["image"] and not args.input.endswith(tables):
        try:
            paths = [str(p) for p in image_inputs(args.input)]  # checked before the model loads
        except ImageError as err:
            raise DataError(str(err), hint="give a folder of images or a text file of image paths") from None
        _predict_rows(args.model, paths, paths, args.output, args.batch_size, args.precision)
        return
    records = list(read_records(args.input))  # the input is checked before the model loads
    if not records:
        raise DataError("has no rows", args.input, hint="give a file with a header and at least one row")
    fields = card.inputs if card is not None else []
    inputs = [{name: r.get(renames.get(name, name)) for name in fields} for r in records]
    if fields == ["image"]:  # paths in a table are relative to it
        inputs = [{"image": str(Path(args.input).parent / str(item["image"]))} for item in inputs]
    ids = [str(r.get(args.id)) if args.id else None for r in records]
    _predict_rows(args.model, inputs, ids, args.output, args.batch_size, args.precision)


def _predict_rows(
    model: str, inputs: list[Any], ids: list[str | None], output: str, batch_size: int | None, precision: Precision
) -> None:
    from n2m.core.predictor import Predictor
    from n2m.core.rows import prediction_rows, write_rows

    try:
        predictor = Predictor.from_pretrained(model, precision=precision)
    except Exception as err:  # a broken folder (bad JSON, cut-off weights, …): one line, not a traceback
        raise ConfigError(f"{model} cannot be loaded as an n2m model: {type(err).__name__}: {err}") from None
    from n2m.shapes.n2m.images import ImageError

    try:
        results = predictor.predict(inputs, batch_size=batch_size)
    except ImageError as err:  # an unreadable image: which one and why, not a traceback
        raise DataError(str(err)) from None
    rows = prediction_rows(results, ids)
    write_rows(output, rows)
    print(f"wrote {len(rows)} predictions to {output}")


def refuse_exported_checkpoint(argv: list[str]) -> None:
    """An exported folder given where a training checkpoint belongs: say what to run instead."""
    for flag, value in itertools.pairwise(argv):
        if flag == "--ckpt_path" and Path(value, "n2m.json").is_file():
            raise ConfigError(
                f"{value} is an exported model, not a training checkpoint: "
                f"`n2m predict --model {value} --input FILE --output FILE` predicts with it"
            )


def _serve(argv: list[str]) -> None:
    from n2m.serve.command import main as serve

    serve(argv)


def _ensemble(argv: list[str]) -> None:
    from n2m.shapes.n21.ensemble import save_ensemble
    from n2m.shapes.n21.examples import Columns

    parser = argparse.ArgumentParser(prog="n2m ensemble", description="Exported N21 models → one ensemble folder.")
    parser.add_argument("out_dir")
    parser.add_argument("models", nargs="+", help="exported model folders (`n2m export`)")
    parser.add_argument("--weighting", choices=["mean", "validation", "fit"], default="mean",
                        help="equal, by each member's validation score, or fitted on --val")  # fmt: skip
    parser.add_argument("--val", help="fit: a labelled validation file, read as in training")
    parser.add_argument("--text", default="text", help="--val's column of the (first) text")
    parser.add_argument("--text-pair", default=None, help="--val's column of the second text of a pair")
    parser.add_argument("--label", default="label", help="--val's label column")
    args = parser.parse_args(argv)
    if args.weighting == "fit" and not args.val:
        parser.error("--weighting fit needs --val FILE")
    columns = Columns(text=args.text, text_pair=args.text_pair, label=args.label)
    out = save_ensemble(args.out_dir, args.models, args.weighting, val_file=args.val, columns=columns)
    print(f"ensemble of {len(args.models)} models written to {out}")


def _kfold(argv: list[str]) -> None:
    """`n2m kfold --folds K <fit arguments>`: train fold 0 … K-1 (each validated on its held-out fold), export
    each fold's best checkpoint, and join them in `<root>/ensemble` weighted by validation score."""
    from n2m.core.export import export_checkpoint
    from n2m.shapes.n21.ensemble import save_ensemble

    parser = argparse.ArgumentParser(prog="n2m kfold", add_help=False)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--trainer.default_root_dir", dest="root", default="runs/kfold")
    args, fit_args = parser.parse_known_args(argv)
    root = Path(args.root)
    members = []
    for fold in range(args.folds):
        fold_dir = root / f"fold{fold}"
        main(["fit", *fit_args, "--data.val", "null", "--data.val_ratio", "0", "--data.folds", str(args.folds),
              "--data.fold", str(fold), "--trainer.default_root_dir", str(fold_dir)])  # fmt: skip
        best = json.loads((fold_dir / "results.json").read_text())["best_checkpoint"]
        members.append(export_checkpoint(best, fold_dir / "model"))
    out = save_ensemble(root / "ensemble", members, "validation")
    print(f"{args.folds} folds trained; ensemble in {out}")


def _vectors(name: str) -> Any:
    """`n2m encode | search | mine` (sentence vectors: `n2m.shapes.n21.search`), imported when called."""

    def command(argv: list[str]) -> None:
        from n2m.shapes.n21.search import COMMANDS as VECTOR_COMMANDS

        VECTOR_COMMANDS[name](argv)

    return command


def _report(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="n2m report",
        description="A run folder → report.html and report/*.png: learning curves, the recipe, the machine, and the "
        "test split's predictions as each shape reads them (confusion matrix, scatter, spans, …).",
    )
    parser.add_argument("run_dir", help="the folder `n2m fit` wrote (its trainer.default_root_dir)")
    args = parser.parse_args(argv)
    print(f"report written to {write_report(args.run_dir)}")


def _bench(argv: list[str]) -> None:
    from n2m.bench import main as bench

    bench(argv)


COMMANDS = {
    "export": _export,
    "ensemble": _ensemble,
    "kfold": _kfold,
    "serve": _serve,
    "report": _report,
    "bench": _bench,
    **{name: _vectors(name) for name in ("encode", "search", "mine")},
}


def shape_of(argv: list[str]) -> str:
    """`--shape X` on the command line wins; else the last `--config` file that has a `shape:` key."""
    shape = "N21"
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv) and Path(argv[i + 1]).is_file():
            config = yaml.safe_load(Path(argv[i + 1]).read_text(encoding="utf-8")) or {}
            shape = config.get("shape", shape) if isinstance(config, dict) else shape
        elif arg.startswith("--config="):
            return shape_of(["--config", arg.split("=", 1)[1], *argv[i + 1 :]])
    for i, arg in enumerate(argv):
        if arg == "--shape" and i + 1 < len(argv):
            shape = argv[i + 1]
        elif arg.startswith("--shape="):
            shape = arg.split("=", 1)[1]
    return shape


def main(argv: list[str] | None = None) -> None:
    given = argv
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] in COMMANDS:
            COMMANDS[argv[0]](argv[1:])
            return
        if argv[:1] == ["predict"] and any(a == "--model" or a.startswith("--model=") for a in argv):
            _predict_exported(argv[1:])
            return
        refuse_exported_checkpoint(argv)
        shape = get_shape(shape_of(argv))
        N2MCLI(
            shape.part("task"),
            shape.part("data"),
            args=given,  # None: LightningCLI reads sys.argv itself
            seed_everything_default=0,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={"max_epochs": 3, "log_every_n_steps": 10},
            auto_configure_optimizers=False,
        )
    except (DataError, ConfigError, BackboneError, FileNotFoundError) as err:
        # bad input is the user's to fix: a clear message, not a traceback
        print(f"n2m: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except SIGTERMException:
        # a scheduler's notice: last.ckpt was written (ResumableCheckpoint); not 0, since the run is unfinished
        print("n2m: stopped by SIGTERM; continue with the same command and `--ckpt_path last`", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None


if __name__ == "__main__":
    main()
