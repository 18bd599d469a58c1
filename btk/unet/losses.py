"""Training loss: soft Dice plus focal loss (gamma 2) on the sigmoid region outputs, deeply supervised."""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Weight of each deep-supervision output, full resolution first (normalised over the outputs present).
SUPERVISION_WEIGHTS = (1.0, 0.5, 0.25)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - soft Dice per region, computed over the whole batch, averaged over regions."""
    probabilities = torch.sigmoid(logits)
    dims = (0, *range(2, logits.ndim))
    intersection = (probabilities * target).sum(dims)
    total = probabilities.sum(dims) + target.sum(dims)
    return 1 - ((2 * intersection + smooth) / (total + smooth)).mean()


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Binary focal loss (Lin et al. 2017) averaged over voxels and regions."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    probabilities = torch.sigmoid(logits)
    p_true = probabilities * target + (1 - probabilities) * (1 - target)
    return ((1 - p_true) ** gamma * bce).mean()


def dice_focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Soft Dice + focal loss for one output."""
    logits = logits.float()
    return soft_dice_loss(logits, target) + focal_loss(logits, target, gamma)


def deep_supervision_loss(outputs: torch.Tensor | list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """The weighted loss over the full-resolution and the coarser outputs.

    Coarser targets are the target averaged down to each output's size (soft labels at boundaries).
    """
    if isinstance(outputs, torch.Tensor):
        return dice_focal_loss(outputs, target)
    weights = SUPERVISION_WEIGHTS[: len(outputs)]
    total = outputs[0].new_zeros(())
    for weight, output in zip(weights, outputs):
        scaled = (
            target if output.shape[2:] == target.shape[2:] else F.interpolate(target, output.shape[2:], mode="area")
        )
        total = total + weight * dice_focal_loss(output, scaled)
    return total / sum(weights)
