"""The `n2m` command: `fit | validate | test | predict` through LightningCLI, plus `export`.

    n2m fit --config recipes/korsts.yaml
    n2m fit --config recipes/korsts.yaml --ckpt_path last        # resume an interrupted run
    n2m test --config recipes/korsts.yaml --ckpt_path runs/korsts/checkpoints/last.ckpt
    n2m predict --config recipes/korsts.yaml --ckpt_path ... --data.predict in.tsv --output out.csv
    n2m export runs/korsts/checkpoints/last.ckpt out/korsts
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from n2m.callbacks import PredictionFileWriter, default_callbacks, default_loggers
from n2m.data.datamodule import TextDataModule
from n2m.errors import DataError
from n2m.tasks.sequence import SequenceTask


class N2MCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # the model decides what the data must produce ...
        for key in ("backbone", "objective", "pair_encoding"):
            parser.link_arguments(f"model.{key}", f"data.{key}")
        # ... and the data tells the model what its labels are
        parser.link_arguments("data.label_names", "model.label_names", apply_on="instantiate")
        parser.link_arguments("data.score_range", "model.score_range", apply_on="instantiate")
        parser.add_argument("--output", default=None, help="predict: file to write (.csv or .jsonl)")

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        config = self._get(self.config_init, "trainer", default={})
        root = config.get("default_root_dir") or os.getcwd()
        callbacks = list(config.get("callbacks") or [])
        if not any(isinstance(c, ModelCheckpoint) for c in callbacks):
            has_bar = any(isinstance(c, ProgressBar) for c in callbacks) or config.get("enable_progress_bar") is False
            kwargs["callbacks"] = callbacks + default_callbacks(self.model, root, progress_bar=not has_bar)
        if config.get("logger") in (None, True):
            kwargs["logger"] = default_loggers(root)
        return super().instantiate_trainer(**kwargs)

    def before_predict(self) -> None:
        output = self._get(self.config, "output")
        if not output:
            raise SystemExit("n2m predict: pass --output FILE (.csv or .jsonl) to say where predictions go")
        self.trainer.callbacks.append(PredictionFileWriter(output))


def _export(argv: list[str]) -> None:
    from n2m.export import export_checkpoint

    parser = argparse.ArgumentParser(prog="n2m export", description="Checkpoint → self-contained model folder.")
    parser.add_argument("checkpoint")
    parser.add_argument("out_dir")
    args = parser.parse_args(argv)
    out = export_checkpoint(args.checkpoint, args.out_dir)
    print(f"exported {args.checkpoint} to {out}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] == "export":
            _export(argv[1:])
            return
        N2MCLI(
            SequenceTask,
            TextDataModule,
            args=argv,
            seed_everything_default=0,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={"max_epochs": 3, "log_every_n_steps": 10},
            auto_configure_optimizers=False,
        )
    except (DataError, FileNotFoundError) as err:
        # bad input is the user's to fix: a clear message, not a traceback
        print(f"n2m: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
