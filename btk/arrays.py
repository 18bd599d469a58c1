"""Array helpers the components share: the box around a mask."""

from __future__ import annotations

import numpy as np


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...]:
    """The smallest box (a slice per axis) holding every true voxel of ``mask``, grown by ``margin`` voxels and
    kept inside the array; the whole array when ``mask`` holds no true voxel."""
    if not mask.any():
        return tuple(slice(0, n) for n in mask.shape)
    box = []
    for axis in range(mask.ndim):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(max(int(present[0]) - margin, 0), min(int(present[-1]) + 1 + margin, mask.shape[axis])))
    return tuple(box)
