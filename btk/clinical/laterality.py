"""Laterality: how much of a region lies in the left and the right hemisphere, and whether it crosses the midline.

The hemispheres are those of the MNI152 template carried onto the BraTS grid (:mod:`btk.clinical.location`):
the midline is the template's mid-sagittal plane (MNI x = 0) as the registration places it in the exam.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from btk.clinical.location import LEFT, RIGHT


@dataclass(frozen=True)
class Laterality:
    """Attributes:
    left_percent, right_percent: The share of the region in each hemisphere (they add up to 100).
    """

    left_percent: float
    right_percent: float

    @property
    def side(self) -> str:
        """``"left"``, ``"right"`` or ``"bilateral"`` (voxels on both sides)."""
        if self.left_percent and self.right_percent:
            return "bilateral"
        return "left" if self.left_percent else "right"


def laterality(mask: np.ndarray, hemispheres: np.ndarray) -> Laterality | None:
    """The share of ``mask`` in each hemisphere (``hemispheres``: a map of :data:`LEFT` / :data:`RIGHT` on
    the same grid); None for an empty mask."""
    total = int(np.count_nonzero(mask))
    if total == 0:
        return None
    left = int(np.count_nonzero(hemispheres[mask] == LEFT))
    right = int(np.count_nonzero(hemispheres[mask] == RIGHT))
    return Laterality(100.0 * left / total, 100.0 * right / total)


def crosses_midline(mask: np.ndarray, hemispheres: np.ndarray) -> bool:
    """Whether a connected mask (a focus) has voxels in both hemispheres."""
    sides = hemispheres[mask]
    return bool(np.any(sides == LEFT) and np.any(sides == RIGHT))
