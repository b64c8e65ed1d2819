"""A ViT with a convolutional stem (Xiao et al. 2021, "Early convolutions help transformers see better"): the
16 × 16 patchify layer is replaced by stride-2 3 × 3 convolutions (normalized, ReLU) and a 1 × 1 projection to the
ViT's width, so each token still covers `patch_size` pixels but is computed by a small CNN.

Why: on the captioning recipe a from-scratch ViT learned to ignore the pictures (its loss on a batch did not
change when the batch's images were rolled: the decoder captioned from its language model alone), while a CNN
(this stem with `num_hidden_layers: 0`) used them within a few hundred steps; on validation the CNN reached
CIDEr-D 115 against the ViT's 28 (benchmarks/caption_dev_trials.py). The convolutions give the locality a ViT
must otherwise learn from far more images.

It is a Hugging Face `ViTModel` whose config carries `model_type` `n2m_vit_conv_stem`; importing this module
registers it with `AutoConfig` / `AutoModel`, so a `VisionEncoderDecoderModel` folder holding one loads through
`from_pretrained` once n2m is imported.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, ViTConfig, ViTModel

StemNorm = Literal["batch", "group"]


class ConvStemViTConfig(ViTConfig):
    """`ViTConfig` plus the stem's channels (one stride-2 convolution per entry, `log2(patch_size)` of them) and its
    normalization: `batch` (Xiao et al.'s) or `group` (one group: each image's own statistics).

    Batch norm is the default because it is what learned: in a short probe on the captioning recipe (not kept as a
    benchmark), one-group norm left the loss with each batch's images rolled equal to the loss with the right
    ones, where batch norm's was already lower. Its cost: a training batch must hold different images (a batch of
    one picture normalizes the picture away), which shuffled or length-grouped batches of many images do."""

    model_type = "n2m_vit_conv_stem"

    def __init__(self, stem_channels: list[int] | None = None, stem_norm: StemNorm = "batch", **kwargs) -> None:
        super().__init__(**kwargs)
        if stem_norm not in ("group", "batch"):
            raise ValueError(f"`stem_norm` is `batch` or `group`, not {stem_norm!r}")
        self.stem_norm = stem_norm
        steps = int(math.log2(self.patch_size))
        if 2**steps != self.patch_size:
            raise ValueError(f"a convolutional stem needs a power-of-two patch size, not {self.patch_size}")
        # channels double per step up to the ViT's width: 16 → 24, 48, 96, 192 for hidden_size 384
        self.stem_channels = list(stem_channels or [self.hidden_size // 2 ** (steps - i) for i in range(steps)])
        if len(self.stem_channels) != steps:
            raise ValueError(f"patch size {self.patch_size} needs {steps} stem channel counts, "
                             f"not {len(self.stem_channels)}")  # fmt: skip


class ConvStem(nn.Sequential):
    """Stride-2 convolutions (normalized, ReLU), then a 1 × 1 projection to the ViT's width."""

    def __init__(self, config: ConvStemViTConfig) -> None:
        layers: list[nn.Module] = []
        channels = [config.num_channels, *config.stem_channels]
        for c_in, c_out in itertools.pairwise(channels):
            norm = nn.GroupNorm(1, c_out) if config.stem_norm == "group" else nn.BatchNorm2d(c_out)
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), norm, nn.ReLU()]
        super().__init__(*layers, nn.Conv2d(channels[-1], config.hidden_size, 1))

    @property
    def weight(self) -> torch.Tensor:
        """ViT casts the pixels to its patch projection's dtype: the last convolution's."""
        return self[-1].weight


class ConvStemViTModel(ViTModel):
    config_class = ConvStemViTConfig

    def __init__(self, config: ConvStemViTConfig, add_pooling_layer: bool = True, use_mask_token: bool = False) -> None:
        super().__init__(config, add_pooling_layer=add_pooling_layer, use_mask_token=use_mask_token)
        # ViT's patch embedding reads `projection(pixels)` as (B, hidden, H / patch, W / patch): the stem gives that
        self.embeddings.patch_embeddings.projection = ConvStem(config)
        self.post_init()


AutoConfig.register(ConvStemViTConfig.model_type, ConvStemViTConfig, exist_ok=True)
AutoModel.register(ConvStemViTConfig, ConvStemViTModel, exist_ok=True)
