"""STAPLE (Warfield et al., IEEE TMI 2004) through SimpleITK (imported when STAPLE runs: 0.1 s saved elsewhere)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def staple(stack: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """Multi-label STAPLE of the candidates stacked along the first axis.

    Voxels STAPLE cannot decide get the first label of ``order`` (background): btk's tie rule.
    """
    import SimpleITK as sitk

    if len(order) == 2:
        return _binary_staple(stack == order[1]).astype(np.uint8) * np.uint8(order[1])
    undecided = 255
    images = [sitk.GetImageFromArray(np.ascontiguousarray(candidate)) for candidate in stack]
    fused = sitk.GetArrayFromImage(sitk.MultiLabelSTAPLE(images, undecided)).astype(np.uint8)
    fused[fused == undecided] = order[0]
    return fused


def _binary_staple(masks: np.ndarray) -> np.ndarray:
    """Binary STAPLE: foreground where the estimated probability exceeds 0.5 (a tie is background).

    When no candidate has a voxel of one of the two classes (every mask full, say), STAPLE's sensitivities or
    specificities are 0/0 and SimpleITK returns NaN everywhere; the fraction of candidates that vote
    foreground stands in for the probability there, so unanimous candidates give their common mask.
    """
    import SimpleITK as sitk

    images = [sitk.GetImageFromArray(np.ascontiguousarray(mask.astype(np.uint8))) for mask in masks]
    probability = sitk.GetArrayFromImage(sitk.STAPLE(images, 1.0))
    undefined = np.isnan(probability)
    if undefined.any():
        probability[undefined] = masks.mean(axis=0, dtype=np.float64)[undefined]
    return probability > 0.5
