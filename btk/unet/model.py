"""The 3D U-Net: three down- and three up-sampling stages, region outputs (WT, TC, ET), deep supervision."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

NORMS = ("group", "instance")


@dataclass(frozen=True)
class ModelConfig:
    """The network's shape.

    Args:
        width: Channels of the first stage; each lower stage doubles them (16 and 48 are the usual values).
        norm: ``"group"`` (8 groups) or ``"instance"`` normalisation.
        residual: Residual (pre-added identity) convolution blocks instead of plain ones.
        deep_supervision: Also predict at 1/2 and 1/4 resolution during training.
        in_channels: Input modalities.
        out_channels: Output regions (WT, TC, ET).
    """

    width: int = 16
    norm: str = "group"
    residual: bool = False
    deep_supervision: bool = True
    in_channels: int = 4
    out_channels: int = 3

    def to_dict(self) -> dict:
        """Plain values, for checkpoints."""
        return asdict(self)


#: How many times the network halves the resolution: inputs must be multiples of 2**DEPTH.
DEPTH = 3


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    raise ValueError(f"unknown norm {kind!r}; use one of {NORMS}")


class ConvBlock(nn.Module):
    """Two 3x3x3 convolutions with normalisation and leaky ReLU; optionally residual."""

    def __init__(self, in_channels: int, out_channels: int, norm: str, residual: bool, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv3d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            _norm(norm, out_channels),
            nn.LeakyReLU(0.01, inplace=True),
            nn.Conv3d(out_channels, out_channels, 3, padding=1, bias=False),
            _norm(norm, out_channels),
        )
        self.skip: nn.Module | None = None
        if residual:
            self.skip = (
                nn.Identity()
                if in_channels == out_channels and stride == 1
                else nn.Sequential(
                    nn.Conv3d(in_channels, out_channels, 1, stride=stride, bias=False), _norm(norm, out_channels)
                )
            )
        self.activation = nn.LeakyReLU(0.01, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if self.skip is not None:
            out = out + self.skip(x)
        return self.activation(out)


class UNet3D(nn.Module):
    """3D U-Net returning region logits (WT, TC, ET).

    In training mode with deep supervision it returns a list: full, 1/2 and 1/4 resolution logits; otherwise
    the full-resolution logits only.
    """

    def __init__(self, config: ModelConfig = ModelConfig()):
        super().__init__()
        self.config = config
        widths = [config.width * 2**level for level in range(DEPTH + 1)]
        norm, residual = config.norm, config.residual
        self.encoder = nn.ModuleList([ConvBlock(config.in_channels, widths[0], norm, residual)])
        for level in range(1, DEPTH + 1):
            self.encoder.append(ConvBlock(widths[level - 1], widths[level], norm, residual, stride=2))
        self.upsample = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for level in range(DEPTH, 0, -1):
            self.upsample.append(nn.ConvTranspose3d(widths[level], widths[level - 1], 2, stride=2))
            self.decoder.append(ConvBlock(2 * widths[level - 1], widths[level - 1], norm, residual))
        # One head per decoder stage: index -1 is full resolution, the others are deep-supervision heads.
        self.heads = nn.ModuleList(
            [nn.Conv3d(widths[level - 1], config.out_channels, 1) for level in range(DEPTH, 0, -1)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        x = skips.pop()
        features = []
        for upsample, decoder in zip(self.upsample, self.decoder):
            x = decoder(torch.cat([upsample(x), skips.pop()], dim=1))
            features.append(x)
        if self.training and self.config.deep_supervision:
            # full resolution first, then 1/2 and 1/4
            return [head(feature) for head, feature in zip(reversed(self.heads), reversed(features))]
        return self.heads[-1](x)
