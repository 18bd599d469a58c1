"""The ``brats-toolkit`` flavour (alias ``btk``): BraTS Toolkit's Fusionator (PyPI ``brats-toolkit`` 1.0.18),
reproduced voxel for voxel, defects included, for users who must match results made with it.

Behaviour, established by running the reference (``tests/data/fusion_oracle/``):

* Labels fused: every value present in any candidate except background.
* Majority voting: label ``l`` wins a voxel when the summed weight of the candidates saying ``l`` is at
  least half the total weight (a tie counts as foreground; background's votes never count). Labels are
  applied from the highest to the lowest, so where several pass, the lowest label wins.
* SIMPLE, per label: the first estimate is that vote on the label's binary masks with the user weights;
  then, up to 25 times, every candidate is weighted ``(Dice + 1)^2`` against the estimate (two empty masks
  score Dice 0) and the vote is repeated with these weights (the user weights are no longer used); it stops
  when the estimate's voxel count changed by fewer than 25 voxels. Its dropout can never fire (weights lie
  in [1, 4], the threshold is 0.05 x the largest), so no candidate is ever dropped. Labels are applied from
  the lowest to the highest: where several pass, the highest label wins.
* Region-wise SIMPLE (``brats-simple``): the same on the regions "label > 0", "label 1 or 4" and "label 4",
  painted as 2, 1 and 4 in that order. It only knows the 0/1/2/4 convention.
"""

from __future__ import annotations

import numpy as np

from btk.errors import InputError
from btk.labels import values_present

_STOP_VOXELS = 25
_ITERATIONS = 25


def present_labels(stack: np.ndarray) -> list[int]:
    """Every non-zero value found in any candidate, ascending."""
    return sorted(v for v in values_present(stack) if v != 0)


def binary_vote(masks: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Foreground where the summed weight of the candidates saying foreground is at least half the total."""
    votes = np.zeros(masks.shape[1:], dtype=np.float64)
    for mask, weight in zip(masks, weights):
        votes += weight * mask
    return votes >= float(np.sum(weights)) / 2.0


def majority_vote(stack: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """BraTS Toolkit's multi-label majority vote (lowest passing label wins)."""
    result = np.zeros(stack.shape[1:], dtype=np.uint8)
    for label in reversed(present_labels(stack)):
        result[binary_vote(stack == label, weights)] = label
    return result


def _dice_or_zero(mask: np.ndarray, estimate: np.ndarray) -> float:
    total = int(np.count_nonzero(mask)) + int(np.count_nonzero(estimate))
    return 2.0 * int(np.count_nonzero(mask & estimate)) / total if total else 0.0


def binary_simple(masks: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, int]:
    """BraTS Toolkit's SIMPLE on binary masks; returns the estimate and the number of iterations run."""
    estimate = binary_vote(masks, weights)
    count = int(np.count_nonzero(estimate))
    for iteration in range(1, _ITERATIONS + 1):
        scores = np.array([(_dice_or_zero(mask, estimate) + 1.0) ** 2 for mask in masks])
        estimate = binary_vote(masks, scores)
        new_count = int(np.count_nonzero(estimate))
        if abs(count - new_count) < _STOP_VOXELS:
            return estimate, iteration
        count = new_count
    return estimate, _ITERATIONS


def simple(stack: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """BraTS Toolkit's multi-label SIMPLE (highest passing label wins); also returns iterations per label."""
    result = np.zeros(stack.shape[1:], dtype=np.uint8)
    iterations = {}
    for label in present_labels(stack):
        mask, iterations[str(label)] = binary_simple(stack == label, weights)
        result[mask] = label
    return result, iterations


def region_simple(stack: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """BraTS Toolkit's region-wise SIMPLE (``brats-simple``) for the 0/1/2/4 convention."""
    if np.isin(stack, (3,)).any():
        raise InputError(
            "the brats-toolkit flavour's region-wise fusion only knows the 0/1/2/4 convention (BraTS 2017-2021), "
            "but the candidates hold label 3",
            hint="use the default flavour, which fuses regions in every convention",
        )
    regions = (("WT", stack > 0, 2), ("TC", np.isin(stack, (1, 4)), 1), ("ET", stack == 4, 4))
    result = np.zeros(stack.shape[1:], dtype=np.uint8)
    iterations = {}
    for name, masks, label in regions:
        mask, iterations[name] = binary_simple(masks, weights)
        result[mask] = label
    return result, iterations
