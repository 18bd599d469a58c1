"""Lossless reorientation between an image's stored axes and the axes HD-BET expects (canonical RAS, z first)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform

_RAS = axcodes2ornt("RAS")


def to_hdbet_axes(
    image: nib.Nifti1Image, data: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Reorient to canonical RAS (flips/permutations only) and put the axes in HD-BET's (S, A, R) order.

    Returns the orientation used, the array and its voxel size in the array's axis order.
    """
    start = io_orientation(image.affine)
    canonical = apply_orientation(np.asarray(data, dtype=np.float32), ornt_transform(start, _RAS))
    zooms = np.asarray(image.header.get_zooms()[:3], dtype=float)
    canonical_zooms = np.empty(3)
    for axis, (target, _) in enumerate(start):
        canonical_zooms[int(target)] = zooms[axis]
    spacing = tuple(float(z) for z in canonical_zooms[::-1])
    return start, np.ascontiguousarray(canonical.transpose(2, 1, 0)), spacing  # type: ignore[return-value]


def from_hdbet_axes(mask: np.ndarray, start: np.ndarray, image: nib.Nifti1Image) -> np.ndarray:
    """Undo :func:`to_hdbet_axes` for a mask, giving an array on ``image``'s own voxel grid."""
    canonical = mask.transpose(2, 1, 0)
    native = apply_orientation(canonical, ornt_transform(_RAS, start))
    assert native.shape == image.shape[:3], (native.shape, image.shape)
    return np.ascontiguousarray(native).astype(np.uint8)
