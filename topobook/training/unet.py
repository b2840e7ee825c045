"""A U-Net (Ronneberger et al., 2015) for binary segmentation, with one logit output channel.

``UNet(base_width=64, depth=4)`` is the paper's network (about 31 M parameters): two 3x3
convolutions with batch normalisation and ReLU per level, max-pooling down, transposed
convolutions up, skip connections by concatenation. The book's default is narrower so that the
training runs fit a 2-core CPU (see chapter 4).

``norm="group"`` replaces batch normalisation by group normalisation (Wu and He, ECCV 2018;
:data:`GROUPS` groups, fewer where a layer has fewer channels). Batch statistics of one 64x64
crop (the paper's batch size 1) are noisy, and a network trained on them is evaluated with
running averages it never trained with; group normalisation computes the same statistics per
crop in training and in evaluation, whatever the batch size.
"""

from __future__ import annotations

import torch
from torch import nn


def default_device() -> torch.device:
    """CUDA when present, CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


NORMS = ("batch", "group")
GROUPS = 8  # groups of group normalisation (each of >= 2 channels at the book's width 16)


def normalisation(kind: str, channels: int) -> nn.Module:
    """The normalisation layer ``kind`` (:data:`NORMS`) for ``channels`` channels."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(GROUPS, channels), channels)
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


class DoubleConv(nn.Sequential):
    """(3x3 convolution, normalisation, ReLU) twice; keeps the spatial size."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch") -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            normalisation(norm, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            normalisation(norm, out_channels),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net mapping images ``(B, in_channels, H, W)`` to logits ``(B, 1, H, W)``.

    ``base_width`` channels at the first level, doubled at each of the ``depth`` down-samplings;
    ``H`` and ``W`` must be divisible by ``2**depth``. A logit above 0 predicts cell (1).
    ``norm``: ``"batch"`` (the paper's) or ``"group"`` normalisation.
    """

    def __init__(
        self, in_channels: int = 1, base_width: int = 16, depth: int = 4, norm: str = "batch"
    ) -> None:
        super().__init__()
        if base_width < 1 or depth < 1:
            raise ValueError(f"need base_width >= 1 and depth >= 1, got {base_width}, {depth}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.depth = depth
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([DoubleConv(in_channels, widths[0], norm)])
        self.down.extend(DoubleConv(widths[i], widths[i + 1], norm) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        self.upsample = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
            for i in reversed(range(depth))
        )
        self.up = nn.ModuleList(
            DoubleConv(2 * widths[i], widths[i], norm) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected input (B, C, H, W), got shape {tuple(x.shape)}")
        factor = 2**self.depth
        if x.shape[-1] % factor or x.shape[-2] % factor:
            shape = tuple(x.shape[-2:])
            raise ValueError(f"height and width must be divisible by 2**depth={factor}, {shape}")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for upsample, block in zip(self.upsample, self.up, strict=True):
            x = block(torch.cat([skips.pop(), upsample(x)], dim=1))
        return self.head(x)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
