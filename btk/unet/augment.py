"""Data augmentation of a batch on the training device: flips, intensity scale/shift, small rotations."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    """Augmentation strengths.

    Args:
        flip_probability: Per spatial axis, chance of a mirror flip.
        scale: Per channel, intensities are multiplied by a factor in [1 - scale, 1 + scale].
        shift: Per channel, a shift in [-shift, shift] (z-score units) is added.
        rotation_probability: Chance of a rotation of a patch.
        max_rotation_degrees: Largest rotation angle about each axis.
    """

    flip_probability: float = 0.5
    scale: float = 0.1
    shift: float = 0.1
    rotation_probability: float = 0.2
    max_rotation_degrees: float = 10.0


def _rotation_matrix(angles: torch.Tensor) -> torch.Tensor:
    """Rotation about the three axes by ``angles`` (radians), as a 3x3 matrix."""
    cx, cy, cz = torch.cos(angles)
    sx, sy, sz = torch.sin(angles)
    one, zero = torch.ones(()), torch.zeros(())
    rx = torch.stack([torch.stack([one, zero, zero]), torch.stack([zero, cx, -sx]), torch.stack([zero, sx, cx])])
    ry = torch.stack([torch.stack([cy, zero, sy]), torch.stack([zero, one, zero]), torch.stack([-sy, zero, cy])])
    rz = torch.stack([torch.stack([cz, -sz, zero]), torch.stack([sz, cz, zero]), torch.stack([zero, zero, one])])
    return rz @ ry @ rx


def augment(
    images: torch.Tensor, regions: torch.Tensor, settings: Augmentation, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch: images (B, C, X, Y, Z) float, regions (B, 3, X, Y, Z) float in [0, 1].

    Random numbers come from ``generator`` (on the CPU) so a seeded run is reproducible on any device.
    """
    batch, channels = images.shape[:2]

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(images.device)

    images, regions = images.clone(), regions.clone()
    for sample in range(batch):
        axes = [axis + 1 for axis in range(3) if float(uniform(1)) < settings.flip_probability]
        if axes:
            images[sample] = images[sample].flip(axes)
            regions[sample] = regions[sample].flip(axes)
    scale = 1 + settings.scale * (2 * uniform(batch, channels) - 1)
    shift = settings.shift * (2 * uniform(batch, channels) - 1)
    images = images * scale[:, :, None, None, None] + shift[:, :, None, None, None]
    rotate = [s for s in range(batch) if float(uniform(1)) < settings.rotation_probability]
    if rotate:
        limit = math.radians(settings.max_rotation_degrees)
        theta = torch.zeros(len(rotate), 3, 4)
        for row in range(len(rotate)):
            theta[row, :, :3] = _rotation_matrix(limit * (2 * torch.rand(3, generator=generator) - 1))
        theta = theta.to(images.device)
        grid = F.affine_grid(theta, [len(rotate), channels, *images.shape[2:]], align_corners=False)
        images[rotate] = F.grid_sample(images[rotate], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        regions[rotate] = F.grid_sample(
            regions[rotate], grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
    return images, regions
