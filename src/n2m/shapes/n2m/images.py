"""Images for N2M captioning: reading (checked: format, size, pixels), resizing, normalizing and training-time
augmentation, shared by the DataModule, the Predictor and the server, so all three see the same pixels.

No Lightning here: the Predictor and the server import this module. Images are kept as `uint8` tensors
`(3, size, size)` after resizing (what the DataModule caches), and become normalized floats per batch.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")
# formats any browser sends and Pillow decodes without extra libraries
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP")
ANIMATED = "first frame"  # what an animated GIF / WebP / APNG is read as (the server says so in /v1/model)


class ImageError(ValueError):
    """An input that is not a usable image. A `ValueError`, so every caller that refuses bad input (the
    predictor's callers, the server's 422 path) handles it; `status` is the HTTP status the server answers."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ImageLimits:
    """What an image may be: bytes of the file, pixels (width × height, checked from the header before anything
    is decoded: a 20,000 × 20,000 "decompression bomb" is refused at its first bytes) and formats."""

    max_bytes: int = 10_000_000
    max_pixels: int = 25_000_000
    formats: tuple[str, ...] = ALLOWED_FORMATS


@dataclass
class ImageAugmentation:
    """Light random changes to training images (never to validation, test or prediction). All 0: none.

    No horizontal flip, on purpose: captions say what is left and what is right.

    Args:
        shift: random translation, up to this share of the side in each direction.
        scale: random zoom in, up to this share (0.1: the crop is 90-100% of the side).
        brightness, contrast, saturation: colour jitter: each factor is drawn from [1 - x, 1 + x].
    """

    shift: float = 0.0
    scale: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0

    @property
    def active(self) -> bool:
        return any((self.shift, self.scale, self.brightness, self.contrast, self.saturation))


@dataclass
class ImageOptions:
    """How an image becomes the encoder's input: resized to `size` × `size` (the whole picture, squeezed, so no
    object is cut off), then each channel normalized as (x / 255 - mean) / std. Kept in the model card, so the
    predictor and the server read images exactly as training did.

    Args:
        size: side of the square the image is resized to, in pixels (a multiple of the encoder's patch size).
        mean, std: per RGB channel, on 0-1 values.
        augment: training-time augmentation (not kept in the card: inference never augments).
    """

    size: int = 112
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    augment: ImageAugmentation = field(default_factory=ImageAugmentation)

    def __post_init__(self) -> None:
        if isinstance(self.augment, dict):
            self.augment = ImageAugmentation(**self.augment)
        if self.size < 8:
            raise ValueError(f"image size {self.size} is too small (at least 8 pixels)")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("image mean and std need three values (R, G, B), std above 0")

    def card(self) -> dict[str, Any]:
        """What inference needs (no augmentation)."""
        return {"size": self.size, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_card(cls, settings: dict[str, Any]) -> ImageOptions:
        return cls(**{k: settings[k] for k in ("size", "mean", "std") if k in settings})


ImageSource = str | Path | bytes | Image.Image


def open_image(source: ImageSource | dict[str, Any], limits: ImageLimits | None = None) -> Image.Image:
    """An RGB image from a path, the file's bytes, a PIL image or `{"image": ...}`, checked against `limits`:
    a file that is no image, a truncated one, a format not allowed, or too many pixels raises `ImageError`.
    An animated image is read as its first frame; EXIF rotation is applied (a phone's photo stands upright)."""
    limits = limits or ImageLimits()
    if isinstance(source, dict):
        source = source.get("image")  # type: ignore[assignment]
    if isinstance(source, Image.Image):
        return _checked(source, limits, "the image")
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{path}: no such image file")
        if path.stat().st_size > limits.max_bytes:
            raise ImageError(f"{path}: {path.stat().st_size} bytes, over the limit of {limits.max_bytes}", 413)
        data, name = path.read_bytes(), str(path)
    elif isinstance(source, bytes | bytearray | memoryview):
        data, name = bytes(source), "the image"
    else:
        raise ImageError(f"expected an image (a path, its bytes or a PIL image), got {type(source).__name__}")
    if len(data) > limits.max_bytes:
        raise ImageError(f"{name}: {len(data)} bytes, over the limit of {limits.max_bytes}", status=413)
    if not data:
        raise ImageError(f"{name} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # Pillow's own bomb check: refuse
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"{name}: too many pixels ({err})", status=413) from None
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image Pillow can read (expected {', '.join(limits.formats)})") from None
    except OSError as err:  # a header cut short
        raise ImageError(f"{name} is not a readable image ({err})") from None
    return _checked(image, limits, name)


def _checked(image: Image.Image, limits: ImageLimits, name: str) -> Image.Image:
    fmt = image.format
    if fmt is not None and fmt not in limits.formats:
        raise ImageError(f"{name} is a {fmt} image; this model takes {', '.join(limits.formats)}", status=415)
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(f"{name} has no pixels ({width} × {height})")
    if width * height > limits.max_pixels:  # from the header: nothing is decoded yet
        raise ImageError(
            f"{name} is {width} × {height} = {width * height:,} pixels, over the limit of {limits.max_pixels:,}",
            status=413,
        )
    try:
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)  # an animated image: its first frame (ANIMATED)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"{name}: too many pixels ({err})", status=413) from None
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data: Pillow says which
        raise ImageError(f"{name} is truncated or corrupt ({err})") from None
    return rgb(ImageOps.exif_transpose(image))


def rgb(image: Image.Image) -> Image.Image:
    """RGB, with transparency laid over white (as a page shows it), not over black."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def to_pixels(image: Image.Image, size: int) -> torch.Tensor:
    """`uint8` `(3, size, size)`: the whole image resized (bicubic, antialiased)."""
    resized = image.resize((size, size), Image.Resampling.BICUBIC)
    return torch.frombuffer(bytearray(resized.tobytes()), dtype=torch.uint8).view(size, size, 3).permute(2, 0, 1)


def read_pixels(
    source: ImageSource | dict[str, Any], options: ImageOptions, limits: ImageLimits | None = None
) -> torch.Tensor:
    """`open_image` then `to_pixels`: one image as the model's input before normalization."""
    return to_pixels(open_image(source, limits), options.size)


def normalize(pixels: torch.Tensor, options: ImageOptions) -> torch.Tensor:
    """`uint8` `(B, 3, H, W)` (or floats in 0-1) → the encoder's `pixel_values`."""
    values = pixels.float() / 255 if pixels.dtype == torch.uint8 else pixels
    mean = torch.tensor(options.mean, dtype=values.dtype).view(1, 3, 1, 1)
    std = torch.tensor(options.std, dtype=values.dtype).view(1, 3, 1, 1)
    return (values - mean) / std


def augment(pixels: torch.Tensor, how: ImageAugmentation, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random shift / zoom (one affine warp, edges repeated) and colour jitter of a `uint8` batch `(B, 3, H, W)`;
    floats in 0-1 come back. Draws from `generator` (or torch's global one, which checkpoints restore)."""
    values = pixels.float() / 255
    batch = values.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(batch, generator=generator)

    if how.shift or how.scale:
        zoom = 1 - uniform(0, how.scale) if how.scale else torch.ones(batch)
        theta = torch.zeros(batch, 2, 3)
        theta[:, 0, 0] = zoom
        theta[:, 1, 1] = zoom
        theta[:, 0, 2] = uniform(-2 * how.shift, 2 * how.shift)  # grid units: the side is 2 long
        theta[:, 1, 2] = uniform(-2 * how.shift, 2 * how.shift)
        grid = torch.nn.functional.affine_grid(theta, list(values.shape), align_corners=False)
        values = torch.nn.functional.grid_sample(values, grid, padding_mode="border", align_corners=False)
    view = (batch, 1, 1, 1)
    if how.brightness:
        values = values * uniform(1 - how.brightness, 1 + how.brightness).view(view)
    if how.contrast:
        grey = values.mean(dim=(1, 2, 3), keepdim=True)
        values = grey + (values - grey) * uniform(1 - how.contrast, 1 + how.contrast).view(view)
    if how.saturation:
        luma = (0.299 * values[:, 0] + 0.587 * values[:, 1] + 0.114 * values[:, 2]).unsqueeze(1)
        values = luma + (values - luma) * uniform(1 - how.saturation, 1 + how.saturation).view(view)
    return values.clamp(0, 1)


def image_inputs(where: str | Path) -> list[Path]:
    """The images `n2m predict` captions: every image file of a folder (sorted by name), or the paths listed one
    per line in a text file (relative to that file; blank lines and `#` comments skipped)."""
    where = Path(where)
    if where.is_dir():
        found = sorted(p for p in where.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not found:
            raise ImageError(f"{where} holds no images ({', '.join(IMAGE_SUFFIXES)})", status=404)
        return found
    if not where.is_file():
        raise ImageError(f"{where}: no such folder or file", status=404)
    if where.suffix.lower() in IMAGE_SUFFIXES:
        return [where]
    lines = where.read_text(encoding="utf-8").splitlines()
    paths = [where.parent / line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not paths:
        raise ImageError(f"{where} lists no images (one path per line)", status=404)
    return paths
