"""Image captioning in the N2M shape (issue 19): images through the shared DataModule (decoded once, augmented in
training only, captions grouped by image for scoring), a VisionEncoderDecoderModel warm-started on a tiny text
backbone (and `architecture: pretrained` from a saved VisionEncoderDecoderModel folder), fit → test → export →
predict (paths, bytes, PIL images, streamed) and `n2m predict --model EXPORT --input FOLDER`.

Images are drawn here with Pillow: a red, blue or green square or circle, on the left or the right."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from PIL import Image, ImageDraw

from n2m.cli import main
from n2m.core.card import ModelCard
from n2m.core.predictor import Predictor
from n2m.errors import DataError
from n2m.shapes.n2m.data import Seq2SeqDataModule
from n2m.shapes.n2m.examples import Seq2SeqColumns
from n2m.shapes.n2m.images import ImageAugmentation, ImageError, ImageOptions, augment, open_image

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes/ko-caption.yaml"
COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 170, 60)}
TINY_VISION = {"hidden_size": 32, "layers": 1, "heads": 2, "ffn_size": 64, "patch_size": 8, "stem": "patch"}
# two stages: 8 × 8 patches of 4 pixels in windows of 4, merged to 4 × 4 patches 32 wide
TINY_SWIN = {"kind": "swin", "hidden_size": 16, "layers": 1, "heads": 2, "ffn_size": 64, "patch_size": 4,
             "stages": 2, "window": 4, "stem": "patch"}  # fmt: skip
# the ViT with stride-2 convolutions computing its 8-pixel patches' tokens, and no attention layers: a CNN
TINY_CNN = {**TINY_VISION, "hidden_size": 64, "layers": 0, "stem": "conv"}
IMAGE_SIZE = 32


def draw(colour: str, shape: str, side: str, size: int = 48) -> Image.Image:
    image = Image.new("RGB", (size, size), (250, 245, 235))
    x0 = 4 if side == "left" else size // 2 + 2
    box = (x0, size // 3, x0 + size // 2 - 6, size // 3 + size // 2 - 6)
    pen = ImageDraw.Draw(image)
    (pen.rectangle if shape == "square" else pen.ellipse)(box, fill=COLOURS[colour])
    return image


def scenes() -> list[tuple[str, str, str]]:
    return [(c, s, side) for c in COLOURS for s in ("square", "circle") for side in ("left", "right")]


def write_caption_data(folder: Path) -> dict[str, Path]:
    """train / val / test JSONL (image paths relative to the file, two captions per image) and the images."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, str]]] = {"train": [], "val": [], "test": []}
    for i, (colour, shape, side) in enumerate(scenes() * 2):
        name = f"images/{i:03d}.png"
        draw(colour, shape, side).save(folder / name)
        split = "train" if i < 12 else "val" if i < 18 else "test"
        for caption in (f"a {colour} {shape} on the {side}", f"on the {side} a {colour} {shape}"):
            rows[split].append({"image": name, "caption": caption})
    files = {}
    for split, items in rows.items():
        files[split] = folder / f"{split}.jsonl"
        files[split].write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")
    return files


@pytest.fixture(scope="module")
def caption_files(tmp_path_factory) -> dict[str, Path]:
    return write_caption_data(tmp_path_factory.mktemp("captions"))


def override(tmp_path: Path, backbone: str, files: dict[str, Path], **changes: Any) -> Path:
    """The real recipe, shrunk: the tiny text backbone, a one-layer 32-wide ViT on 32-pixel images."""
    config: dict[str, Any] = {
        "model": {
            "decoder_layers": 1,
            "vision": TINY_VISION,
            "metrics": ["bleu", "chrf"],
            "monitor": "bleu",
            "scenes": None,
            "caption_vocabulary": None,
            "bleu_tokenize": "13a",
            "generation": {"num_beams": 2, "max_new_tokens": 10},
            "val_generation": {"num_beams": 1, "max_new_tokens": 10},
            "optimization": {"lr": 1e-3, "head_lr": 1e-3},
            **changes.pop("model", {}),
        },
        "data": {
            "backbone": backbone,
            "train": str(files["train"]),
            "val": str(files["val"]),
            "test": str(files["test"]),
            "trim_vocab": False,  # the tiny backbone has minilm's WordPiece vocabulary
            "cache_tokens": False,
            "batch_size": 8,
            "images": {"size": IMAGE_SIZE, "augment": {"shift": 0.05, "brightness": 0.1}},
            **changes.pop("data", {}),
        },
        # without the recipe's weight average: over a few dozen steps a 200-step average would hold them all
        "trainer": {
            "max_epochs": 1,
            "enable_progress_bar": False,
            "default_root_dir": str(tmp_path / "run"),
            "callbacks": [],
        },
    }
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def fit(tmp_path: Path, config: Path, *extra: str) -> None:
    main(["fit", "--config", str(RECIPE), "--config", str(config), *extra])


def test_recipe_parses():
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(RECIPE), "--print_config"])
    assert exit_.value.code == 0


def test_images_through_the_datamodule(tiny_backbone, caption_files):
    data = Seq2SeqDataModule(
        train=str(caption_files["train"]),
        val=str(caption_files["val"]),
        columns=Seq2SeqColumns(source="image", target="caption"),
        backbone=tiny_backbone,
        trim_vocab=False,
        cache_tokens=False,
        batch_size=4,
        images=ImageOptions(size=IMAGE_SIZE, augment=ImageAugmentation(shift=0.1, brightness=0.2)),
    )
    assert (data.spec.task, data.spec.inputs, data.spec.settings["image"]["size"]) == ("captioning", ["image"], 32)
    data.setup("fit")
    train, val = data.datasets["train"], data.datasets["val"]
    assert len(train) == 24 and len(val) == 6  # every pair trains; validation has one example per image
    assert all(len(ex.references) == 2 for ex in data.examples["val"])
    # decoded once: the two rows of an image share one tensor, and it is uint8 at the recipe's size
    first, second = train.data.features[0]["pixels"], train.data.features[1]["pixels"]  # type: ignore[attr-defined]
    assert first is second and first.dtype == torch.uint8 and first.shape == (3, IMAGE_SIZE, IMAGE_SIZE)
    # training batches are augmented, validation batches never
    items = [train[i] for i in range(4)]
    torch.manual_seed(0)
    a = data.collate(items)["pixel_values"]
    torch.manual_seed(1)
    b = data.collate(items)["pixel_values"]
    assert not torch.equal(a, b)
    val_items = [val[i] for i in range(2)]
    assert torch.equal(data.collate(val_items)["pixel_values"], data.collate(val_items)["pixel_values"])
    # lengths for length-grouping are the captions'
    assert train.lengths == [len(t) for t in train.data.targets]  # type: ignore[attr-defined]


def test_ratio_splits_keep_each_image_in_one_split(tiny_backbone, caption_files):
    data = Seq2SeqDataModule(
        train=str(caption_files["train"]),
        val_ratio=0.25,
        test_ratio=0.25,
        columns=Seq2SeqColumns(source="image", target="caption"),
        backbone=tiny_backbone,
        trim_vocab=False,
        images=ImageOptions(size=IMAGE_SIZE),
    )
    splits = {name: {ex.source for ex in data.read_splits(stage)[name]} for stage, name in
              (("fit", "train"), ("fit", "val"), ("test", "test"))}  # fmt: skip
    assert all(splits.values()) and sum(map(len, splits.values())) == 12
    assert not (splits["train"] & splits["val"] or splits["train"] & splits["test"] or splits["val"] & splits["test"])


def test_a_missing_image_names_the_file_and_line(tiny_backbone, tmp_path):
    files = write_caption_data(tmp_path)
    (tmp_path / "images/003.png").unlink()
    data = Seq2SeqDataModule(
        train=str(files["train"]),
        columns=Seq2SeqColumns(source="image", target="caption"),
        backbone=tiny_backbone,
        trim_vocab=False,
        cache_tokens=False,
        images=ImageOptions(size=IMAGE_SIZE),
    )
    with pytest.raises(DataError, match=r"train.jsonl.*line 7.*003.png|003.png.*train.jsonl.*7"):
        data.setup("fit")


def test_augmentation_keeps_the_shape_and_range():
    pixels = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    how = ImageAugmentation(shift=0.1, scale=0.1, brightness=0.3, contrast=0.3, saturation=0.3)
    out = augment(pixels, how, torch.Generator().manual_seed(0))
    assert out.shape == pixels.shape and out.min() >= 0 and out.max() <= 1
    assert torch.equal(augment(pixels, ImageAugmentation()), pixels.float() / 255)  # all 0: nothing changes


def test_fit_test_export_predict_and_stream(tiny_backbone, caption_files, tmp_path):
    fit(tmp_path, override(tmp_path, tiny_backbone, caption_files), "--trainer.max_steps", "3")
    run = tmp_path / "run"
    results = json.loads((run / "results.json").read_text())
    assert {"test/bleu", "test/chrf"} <= set(results["test"])
    rows = [json.loads(line) for line in (run / "test_generations.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(len(r["references"]) == 2 and r["source"].endswith(".png") for r in rows)

    out = tmp_path / "export"
    main(["export", results["best_checkpoint"], str(out)])
    card = ModelCard.load(out)
    assert (card.shape, card.task, card.inputs) == ("N2M", "captioning", ["image"])
    assert card.settings["image"] == {"size": IMAGE_SIZE, "mean": [0.5] * 3, "std": [0.5] * 3}
    assert json.loads((out / "config.json").read_text())["model_type"] == "vision-encoder-decoder"

    predictor = Predictor.from_pretrained(out)
    path = caption_files["test"].parent / rows[0]["source"]
    image = Image.open(path)
    by_path, by_bytes, by_pil, by_dict = predictor.predict([str(path), path.read_bytes(), image, {"image": str(path)}])
    assert by_path.text == by_bytes.text == by_pil.text == by_dict.text
    assert "".join(predictor.stream(path.read_bytes())) == by_path.text
    with pytest.raises(ImageError, match=r"input 1: .*not an image"):
        predictor.predict([str(path), b"hello, not a picture"])


@pytest.mark.parametrize(
    ("vision", "model_type", "batch_size", "epochs"),
    [
        (TINY_VISION, "vit", 8, 60),
        # batch norm needs batches of both pictures (one picture is normalized away): one batch of all 16 rows,
        # and twice the steps (it learns colour more slowly than the ViT)
        (TINY_CNN, "n2m_vit_conv_stem", 16, 120),
        (TINY_SWIN, "swin", 8, 60),
    ],
    ids=["vit", "conv-stem", "swin"],
)
def test_it_learns_what_the_pictures_show(tiny_backbone, tmp_path, vision, model_type, batch_size, epochs):
    """Two pictures, one caption each, trained until it tells them apart: colour and side come from the image,
    through each image encoder, and survive the export (each encoder is read back as itself, the convolutional
    stem with its batch-norm statistics)."""
    (tmp_path / "images").mkdir()
    rows = []
    for name, (colour, side) in {"r": ("red", "left"), "b": ("blue", "right")}.items():
        draw(colour, "square", side).save(tmp_path / f"images/{name}.png")
        rows += [{"image": f"images/{name}.png", "caption": f"a {colour} square on the {side}"}] * 8
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    files = {"train": train, "val": train, "test": train}
    config = override(
        tmp_path,
        tiny_backbone,
        files,
        model={
            "optimization": {"lr": 6e-3, "head_lr": 6e-3, "warmup_ratio": 0.0, "schedule": "constant"},
            "label_smoothing": 0.0,
            "vision": vision,
        },
        # a random order mixes both pictures in a batch (grouped by length, each batch would hold one caption);
        # these budgets pass for each of the seeds 0-5, so they do not hang on one run's order
        data={"images": {"size": IMAGE_SIZE}, "batch_size": batch_size, "group_by_length": False},
    )
    fit(tmp_path, config, "--trainer.max_epochs", str(epochs), "--trainer.check_val_every_n_epoch", str(epochs))
    results = json.loads((tmp_path / "run/results.json").read_text())
    main(["export", results["best_checkpoint"], str(tmp_path / "export")])
    encoder = json.loads((tmp_path / "export/config.json").read_text())["encoder"]["model_type"]
    assert encoder == model_type
    predictor = Predictor.from_pretrained(tmp_path / "export")
    red, blue = predictor.predict([tmp_path / "images/r.png", tmp_path / "images/b.png"])
    assert (red.text, blue.text) == ("a red square on the left", "a blue square on the right")


def test_architecture_pretrained_loads_a_vision_encoder_decoder_folder(tiny_backbone, caption_files, tmp_path):
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        BertConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTModel,
    )

    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone)
    encoder = ViTModel(ViTConfig(image_size=IMAGE_SIZE, patch_size=8, hidden_size=24, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=48), add_pooling_layer=False)  # fmt: skip
    decoder = AutoModelForCausalLM.from_config(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            is_decoder=True,
            add_cross_attention=True,
        )
    )
    net = VisionEncoderDecoderModel(encoder=encoder, decoder=decoder)
    net.config.decoder_start_token_id = tokenizer.cls_token_id
    net.config.pad_token_id = tokenizer.pad_token_id
    net.config.eos_token_id = tokenizer.sep_token_id
    folder = tmp_path / "tiny-ved"
    net.save_pretrained(folder)
    tokenizer.save_pretrained(folder)

    config = override(tmp_path, str(folder), caption_files, data={"architecture": "pretrained"})
    fit(tmp_path, config, "--trainer.max_steps", "3")
    results = json.loads((tmp_path / "run/results.json").read_text())
    out = tmp_path / "export"
    main(["export", results["best_checkpoint"], str(out)])
    predictor = Predictor.from_pretrained(out)
    assert predictor.model.config.encoder.hidden_size == 24  # its own encoder, with a projection to the decoder
    assert isinstance(predictor.predict([draw("red", "circle", "left")])[0].text, str)


def test_an_image_size_the_encoder_cannot_cut_says_why(tiny_backbone):
    from n2m.shapes.n2m.vision import VisionSize, build_captioner

    with pytest.raises(ValueError, match="image size 36 is not a multiple of 8 pixels, the side of the swin"):
        build_captioner("warm_start", tiny_backbone, None, _ids(tiny_backbone), 36, vision=VisionSize(**TINY_SWIN))
    with pytest.raises(ValueError, match=r"`vision\.kind` is `vit` or `swin`, not 'cnn'"):
        build_captioner("warm_start", tiny_backbone, None, _ids(tiny_backbone), 32,
                        vision=VisionSize(**{**TINY_SWIN, "kind": "cnn"}))  # type: ignore[arg-type]  # fmt: skip
    with pytest.raises(ValueError, match=r"`vision\.stem` is `patch`, or `conv` for a `vit`; not 'conv' for 'swin'"):
        build_captioner("warm_start", tiny_backbone, None, _ids(tiny_backbone), 32,
                        vision=VisionSize(**{**TINY_SWIN, "stem": "conv"}))  # fmt: skip


def test_a_wrong_image_size_for_a_pretrained_encoder_says_what_to_set(tiny_backbone, caption_files, tmp_path):
    from n2m.shapes.n2m.vision import VisionSize, build_captioner, check_image_size

    net = build_captioner("warm_start", tiny_backbone, None, _ids(tiny_backbone), 32, vision=VisionSize(**TINY_VISION))
    with pytest.raises(ValueError, match=r"data\.images\.size: 32"):
        check_image_size(net, 64)


def _ids(folder: str):
    from transformers import AutoTokenizer

    from n2m.shapes.n2m.model import special_ids

    return special_ids("warm_start", AutoTokenizer.from_pretrained(folder), folder)


def test_n2m_predict_captions_a_folder_of_images(tiny_backbone, caption_files, tmp_path, capsys):
    fit(tmp_path, override(tmp_path, tiny_backbone, caption_files), "--trainer.max_steps", "3")
    results = json.loads((tmp_path / "run/results.json").read_text())
    main(["export", results["best_checkpoint"], str(tmp_path / "export")])
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i, (colour, shape, side) in enumerate(scenes()[:3]):
        draw(colour, shape, side).save(folder / f"{i}.png")
    (folder / "notes.txt").write_text("not an image", encoding="utf-8")
    out = tmp_path / "captions.jsonl"
    main(["predict", "--model", str(tmp_path / "export"), "--input", str(folder), "--output", str(out)])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [str(folder / f"{i}.png") for i in range(3)]
    assert all(isinstance(r["text"], str) for r in rows)
    listing = tmp_path / "list.txt"
    listing.write_text("pictures/2.png\npictures/0.png\n", encoding="utf-8")
    main(["predict", "--model", str(tmp_path / "export"), "--input", str(listing), "--output", str(out)])
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [
        str(tmp_path / "pictures/2.png"),
        str(tmp_path / "pictures/0.png"),
    ]


def test_caption_metrics_score_the_whole_split(tmp_path):
    from n2m.shapes.n2m.caption_metrics import CaptionMetrics, SceneTruth
    from n2m.shapes.n2m.cider import cider_d

    (tmp_path / "scenes.jsonl").write_text(
        json.dumps({"image": "a.png", "objects": [{"kind": "cat", "count": 2}]}) + "\n"
        + json.dumps({"image": "b.png", "objects": [{"kind": "dog", "count": 1}]}) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    vocabulary = {"objects": {"cat": {"en": ["cat", "cats"]}, "dog": {"en": ["dog", "dogs"]}},
                  "numbers": {"en": {"one": 1, "a": 1, "two": 2}}, "classifiers": {}}  # fmt: skip
    (tmp_path / "vocabulary.json").write_text(json.dumps(vocabulary), encoding="utf-8")
    truth = SceneTruth([str(tmp_path / "scenes.jsonl")], str(tmp_path / "vocabulary.json"))
    metrics = CaptionMetrics(["bleu", "cider", "object_accuracy", "count_accuracy"], "13a", truth)
    predictions = ["two cats sit here", "two dogs"]
    references = [["two cats sit here", "there are two cats"], ["one dog", "a dog is here"]]
    images = [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    metrics.update(predictions[:1], references[:1], images[:1])  # two batches: CIDEr-D is over both at once
    metrics.update(predictions[1:], references[1:], images[1:])
    scores = metrics.compute()
    assert scores["cider"] == pytest.approx(100 * cider_d(predictions, references))
    assert (scores["object_accuracy"], scores["count_accuracy"]) == (100.0, 50.0)
    with pytest.raises(ValueError, match="scenes"):
        CaptionMetrics(["object_accuracy"])


def test_open_image_refuses_what_is_not_a_usable_image(tmp_path):
    png = io.BytesIO()
    draw("red", "square", "left").save(png, format="PNG")
    data = png.getvalue()
    assert open_image(data).size == (48, 48)
    for bad, status, words in (
        (b"just some text", 422, "not an image"),
        (data[: len(data) // 2], 422, "truncated"),
        (b"", 422, "empty"),
    ):
        with pytest.raises(ImageError, match=words) as err:
            open_image(bad)
        assert err.value.status == status
