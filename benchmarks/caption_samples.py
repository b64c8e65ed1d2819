"""Captions of the trained Korean captioner (recipes/ko-caption.yaml) for test images chosen by a fixed seed.

`--n` images of the recipe's test split and `--n` of the held-out combinations (`test_novel`: object-attribute
pairs never seen in training) are picked by `torch.randperm` with `--seed`, not by hand. The run's best
checkpoint is exported (if it is not already) and captions them with the recipe's decoding, through the exported
Predictor. The images are copied to docs/caption-samples/; writes benchmarks/results/caption_samples.md (image,
the model's caption, a reference, whether the caption names exactly the objects and counts in the image), after
a table of each split scored whole through that Predictor (CIDEr-D, BLEU, chrF, objects and counts right): the
ordinary test split beside the held-out combinations.

    n2m fit --config recipes/ko-caption.yaml
    python benchmarks/caption_samples.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _measure import machine, today  # noqa: E402

RECIPE = ROOT / "recipes/ko-caption.yaml"
README_START, README_END = "<!-- caption-samples:start -->", "<!-- caption-samples:end -->"
SPLITS = {"test": ROOT / "data/ko-caption/test.jsonl", "test_novel": ROOT / "data/ko-caption/test_novel.jsonl"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT / "runs/ko-caption"), help="the recipe's default_root_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/caption_samples.md"))
    parser.add_argument("--images", default=str(ROOT / "docs/caption-samples"), help="where the images are copied")
    args = parser.parse_args()

    from n2m.core.export import chosen_checkpoint, export_checkpoint
    from n2m.core.predictor import Predictor
    from n2m.shapes.n2m.caption_metrics import CaptionMetrics, SceneTruth
    from n2m.shapes.n2m.caption_scores import read_objects
    from n2m.shapes.n2m.data import Seq2SeqDataModule
    from n2m.shapes.n2m.examples import Seq2SeqColumns
    from n2m.shapes.n2m.images import ImageOptions

    run = Path(args.run)
    report = json.loads((run / "results.json").read_text(encoding="utf-8"))
    model_dir = run / "model"
    if not (model_dir / "n2m.json").is_file():
        export_checkpoint(chosen_checkpoint(run), model_dir)  # the one its validation chose, wherever the run lies
    predictor = Predictor.from_pretrained(model_dir)
    config = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    out, images = Path(args.out), Path(args.images)
    images.mkdir(parents=True, exist_ok=True)
    test_scores = {k.removeprefix("test/"): round(v, 2) for k, v in report["test"].items() if k != "test/loss"}
    lines = [
        f"Korean image captioning (recipes/ko-caption.yaml): {args.n} images of each test split picked by "
        f"`torch.randperm(seed={args.seed})`; decoding as in the recipe ({predictor.generation.num_beams} beams). "
        f"`n2m fit`'s own test of this checkpoint: {test_scores}. {today()}, {machine()}.",
    ]
    model_cfg = config["model"]
    truth = SceneTruth([str(ROOT / f) for f in model_cfg["scenes"]], str(ROOT / model_cfg["caption_vocabulary"]))
    splits, captions, scores = {}, {}, {}
    for split, file in SPLITS.items():
        data_cfg = dict(config["data"], columns=Seq2SeqColumns(**config["data"]["columns"]), test=str(file))
        data_cfg["images"] = ImageOptions(**data_cfg["images"])
        splits[split] = Seq2SeqDataModule(**data_cfg).read_splits("test")["test"]  # an example per image
        metrics = CaptionMetrics(model_cfg["metrics"], model_cfg["bleu_tokenize"], truth)
        captions[split] = [c.text for c in predictor.predict([ex.source for ex in splits[split]])]
        metrics.update(captions[split], [ex.references for ex in splits[split]], [ex.source for ex in splits[split]])
        scores[split] = metrics.compute()
    names = {"cider": "CIDEr-D", "bleu": "BLEU", "chrf": "chrF", "object_accuracy": "objects right %",
             "count_accuracy": "counts right %"}  # fmt: skip
    lines += ["", "Each split scored whole through the exported Predictor:", "",
              "| split | images | " + " | ".join(names.values()) + " |", "|---|---|" + "---|" * len(names)]  # fmt: skip
    for split, score in scores.items():
        lines.append(f"| {split} | {len(splits[split])} | " + " | ".join(f"{score[k]:.2f}" for k in names) + " |")
    samples: list[tuple[str, list[list[Any]]]] = []  # (heading, [image path, caption, reference, right])
    for split, test in splits.items():
        order = torch.randperm(len(test), generator=torch.Generator().manual_seed(args.seed))
        what = "held-out combinations, never in training" if split == "test_novel" else "the ordinary test split"
        rows = []
        for i in sorted(order[: args.n].tolist()):  # their captions are the ones just scored
            ex, caption = test[i], captions[split][i]
            target = images / f"{split}-{Path(ex.source).name}"
            shutil.copyfile(ex.source, target)
            right = read_objects(caption, truth.vocabulary, "ko") == dict(truth.of(ex.source))
            rows.append([target, caption, ex.references[0], "yes" if right else "no"])
        samples.append((f"**{split}** ({what}, {len(test)} images)", rows))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines + sample_tables(samples, out.parent)) + "\n", encoding="utf-8")
    readme = ROOT / "README.md"
    block = [f"Scores and samples from [`{out.relative_to(ROOT)}`]({out.relative_to(ROOT)}) "
             f"(`python benchmarks/caption_samples.py`, {today()}, {machine()}):", "", *lines[2:],
             *sample_tables(samples, ROOT)]  # fmt: skip
    text = readme.read_text(encoding="utf-8")
    head, rest = text.split(README_START, 1)
    readme.write_text(head + README_START + "\n" + "\n".join(block) + "\n" + README_END + rest.split(README_END, 1)[1],
                      encoding="utf-8")  # fmt: skip
    print("\n".join(lines))


def sample_tables(samples: list[tuple[str, list[list[Any]]]], base: Path) -> list[str]:
    """The sample rows as Markdown tables, images linked relative to `base` (the page's folder)."""
    lines = []
    for heading, rows in samples:
        lines += ["", heading, "", "| image | model's caption | a reference | objects and counts right |",
                  "|---|---|---|---|"]  # fmt: skip
        for image, *cells in rows:
            link = os.path.relpath(Path(image).resolve(), base.resolve())
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in [f"![{image.name}]({link})", *cells]) + " |")
    return lines


if __name__ == "__main__":
    main()
