"""Exact distances from voxels to the nearest voxel of a mask on the same grid, mostly with numpy alone.

:func:`nearest_distance_percentile` is what the HD95 of :mod:`btk.evaluation.metrics` needs: a percentile
of the distances from some voxels (one surface's) to the nearest voxel of a mask (the other surface). A k-d
tree (SciPy's ``cKDTree``) gives the same numbers, but importing SciPy takes longer than a whole
``btk fuse`` of five candidates, which scores every candidate this way.

The search visits the offsets around every point in order of distance (in millimetres, with the voxel
spacing), nearest first, in a few batches of growing radius: the first offset that lands on the mask gives
the point's distance exactly. After each batch it stops as soon as the points not yet found, all farther
than the batch's radius, cannot move the percentile. Points farther than the last radius are measured
against every voxel of the mask, or, when there are many of them and of those voxels (two large masks far
apart, which costs a k-d tree less), by SciPy's k-d tree.
"""

from __future__ import annotations

from functools import cache

import numpy as np

#: Radii of the offset batches, in voxels of the finest spacing. Surfaces that nearly agree are done after
#: the first; beyond the last, the points left are measured against every mask voxel.
BATCH_RADII_VOXELS = (1.0, 2.0, 4.0, 8.0)
#: Elements of one batch's index matrix (points x offsets) or of one exhaustive block (points x targets).
_BLOCK_ELEMENTS = 2_000_000
#: Above this many point-target pairs left after the batches, a k-d tree measures them (about 0.1 s of
#: exhaustive search here).
EXHAUSTIVE_PAIRS = 20_000_000


def nearest_distance_percentile(
    points: np.ndarray, targets: np.ndarray, spacing: tuple[float, ...], percentile: float = 95.0
) -> float:
    """A percentile (numpy's linear one) of the distances, in mm, from each point to the nearest true voxel.

    Args:
        points: Voxel indices on the grid of ``targets``, one row per point (``np.argwhere`` of a mask).
        targets: A boolean array with at least one true voxel.
        spacing: The voxel size along each axis, in mm.
        percentile: Between 0 and 100.
    """
    count = len(points)
    if count == 0 or not targets.any():
        raise ValueError("nearest distances need at least one point and one target voxel")
    # np.percentile interpolates between two order statistics; once both are known, farther points don't matter
    needed = min(count, int(np.floor(percentile / 100.0 * (count - 1))) + 2)
    distances = np.full(count, np.inf)
    scale = np.asarray(spacing, dtype=np.float64)
    batches = _offset_batches(tuple(float(s) for s in scale))
    reach = np.max(np.abs(np.concatenate([offsets for offsets, _ in batches])), axis=0)
    padded = np.pad(np.asarray(targets, dtype=bool), [(int(r), int(r)) for r in reach])
    flat_targets = padded.ravel()
    strides = np.asarray(padded.strides) // padded.itemsize
    flat_points = (points + reach) @ strides
    unresolved = np.arange(count)
    for offsets, offset_distances in batches:
        flat_offsets = offsets @ strides
        still = []
        for block in np.array_split(unresolved, max(1, len(unresolved) * len(offsets) // _BLOCK_ELEMENTS)):
            hits = flat_targets[flat_points[block, None] + flat_offsets[None, :]]
            found = hits.any(axis=1)
            distances[block[found]] = offset_distances[hits[found].argmax(axis=1)]
            still.append(block[~found])
        unresolved = np.concatenate(still)
        if count - len(unresolved) >= needed:
            return float(np.percentile(distances, percentile))
    far, target_points = points[unresolved], np.argwhere(targets)
    if len(far) * len(target_points) > EXHAUSTIVE_PAIRS:
        distances[unresolved] = _kd_tree_distances(far, target_points, scale)
    else:
        distances[unresolved] = _exhaustive_distances(far, target_points, scale)
    return float(np.percentile(distances, percentile))


@cache
def _offset_batches(spacing: tuple[float, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The integer offsets within :data:`BATCH_RADII_VOXELS` (times the finest spacing) of a voxel, each
    batch sorted by distance and holding those beyond the previous radius: ``(offsets, distances_mm)``."""
    scale = np.asarray(spacing)
    largest = BATCH_RADII_VOXELS[-1] * scale.min()
    half_widths = np.floor(largest / scale).astype(int)
    axes = [np.arange(-w, w + 1) for w in half_widths]
    offsets = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(spacing))
    distances = _lengths_mm(offsets, scale)
    order = np.argsort(distances, kind="stable")
    offsets, distances = offsets[order], distances[order]
    batches, inner = [], -1.0
    for radius in BATCH_RADII_VOXELS:
        outer = radius * scale.min()
        chosen = (distances > inner) & (distances <= outer)
        batches.append((offsets[chosen], distances[chosen]))
        inner = outer
    return batches


def _lengths_mm(differences: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The length in mm of integer index differences (one row each): one formula for both searches, so a
    distance found either way is the same number."""
    return np.sqrt(sum((differences[:, axis] * scale[axis]) ** 2 for axis in range(len(scale))))


def _exhaustive_distances(points: np.ndarray, targets: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The distance from each point to the nearest of ``targets`` (indices), measured against all of them."""
    nearest = np.empty(len(points))
    rows = max(1, _BLOCK_ELEMENTS // len(targets))
    for start in range(0, len(points), rows):
        block = points[start : start + rows]
        squared = sum(
            ((block[:, None, axis] - targets[None, :, axis]) * scale[axis]) ** 2 for axis in range(len(scale))
        )
        nearest[start : start + rows] = np.sqrt(squared.min(axis=1))
    return nearest


def _kd_tree_distances(points: np.ndarray, targets: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The distance from each point to the nearest of ``targets`` (indices), by SciPy's k-d tree."""
    from scipy.spatial import cKDTree  # only for large masks far apart: its import costs more than most searches

    distances, _ = cKDTree(targets * scale).query(points * scale)
    return distances
