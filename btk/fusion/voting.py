"""Weighted plurality voting, the building block of btk's majority voting and SIMPLE."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def weighted_count(stack: np.ndarray, weights: np.ndarray, label: int) -> np.ndarray:
    """Per voxel, the summed weight of the candidates (first axis of ``stack``) that say ``label``."""
    total = np.zeros(stack.shape[1:], dtype=np.float64)
    for candidate, weight in zip(stack, weights):
        if weight:
            total += weight * (candidate == label)
    return total


def plurality_vote(stack: np.ndarray, weights: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """Each voxel gets the label with the largest summed weight; background competes like any label.

    Ties go to the label that comes first in ``order`` (btk's tie rule: background, then outer to inner
    tumour classes), so a tie never grows the tumour. For two labels ``(0, 1)`` this is a strict
    weighted majority.
    """
    weights = np.asarray(weights, dtype=np.float64)
    tolerance = 1e-9 * float(weights.sum())  # sums of the same weights in another order must still tie
    best_label = np.full(stack.shape[1:], order[0], dtype=np.uint8)
    best_score = weighted_count(stack, weights, order[0])
    for label in order[1:]:
        score = weighted_count(stack, weights, label)
        better = score > best_score + tolerance
        best_label[better] = label
        best_score = np.where(better, score, best_score)
    return best_label
