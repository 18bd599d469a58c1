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
apart, which costs a k-d tree less), by SciPy's k-d tree. :func:`nearest_distance_percentiles` does this for
several groups of points at once (several surfaces against one), measuring each point once and stopping
when every group's percentile is known.
"""

from __future__ import annotations

from functools import cache

import numpy as np

#: Radii of the offset batches, in voxels of the finest spacing. Surfaces that nearly agree are done after
#: the first; beyond the last, the points left are measured against every mask voxel.
BATCH_RADII_VOXELS = (1.0, 2.0, 4.0, 8.0)
#: Elements of one batch's index matrix (points x offsets) or of one exhaustive block (points x targets).
_BLOCK_ELEMENTS = 250_000
#: Above this many point-target pairs left after the batches, a k-d tree measures them (about 0.15 s of
#: exhaustive search here, as long as SciPy's import and its tree take).
EXHAUSTIVE_PAIRS = 50_000_000
#: Bound on the relative rounding error of the squared distances the matrix product gives (many ulps).
_ROUNDING = 1e-12


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
    return nearest_distance_percentiles(points, np.ones((1, len(points)), dtype=bool), targets, spacing, percentile)[0]


def nearest_distance_percentiles(
    points: np.ndarray, groups: np.ndarray, targets: np.ndarray, spacing: tuple[float, ...], percentile: float = 95.0
) -> list[float]:
    """:func:`nearest_distance_percentile` of several groups of points at once (the surfaces of several masks
    against one), each point measured once however many groups hold it.

    Args:
        points: As for :func:`nearest_distance_percentile`: the union of the groups' points.
        groups: A boolean matrix, one row per group and one column per point: which points each group holds
            (every group at least one).
        targets, spacing, percentile: As for :func:`nearest_distance_percentile`.
    """
    groups = np.asarray(groups, dtype=bool)
    sizes = np.count_nonzero(groups, axis=1)
    if len(points) == 0 or not targets.any() or not sizes.all():
        raise ValueError("nearest distances need at least one point per group and one target voxel")
    # np.percentile interpolates between two order statistics; once both are known, farther points don't matter
    needed = np.minimum(sizes, np.floor(percentile / 100.0 * (sizes - 1)).astype(int) + 2)
    distances = _search(points, groups, targets, spacing, needed)
    return [float(np.percentile(distances[members], percentile)) for members in groups]


def _search(
    points: np.ndarray, groups: np.ndarray, targets: np.ndarray, spacing: tuple[float, ...], needed: np.ndarray
) -> np.ndarray:
    """Distances from the points to the targets, exact for at least the ``needed`` nearest points of each
    group (the others are left infinite, farther than all of those)."""
    distances = np.full(len(points), np.inf)
    scale = np.asarray(spacing, dtype=np.float64)
    key = tuple(float(s) for s in scale)
    batches, reach = _offset_batches(key), _reach(key)
    padded = np.zeros(tuple(int(n + 2 * r) for n, r in zip(targets.shape, reach)), dtype=bool)
    padded[tuple(slice(int(r), int(r + n)) for n, r in zip(targets.shape, reach))] = targets
    flat_targets = padded.ravel()
    strides = np.asarray(padded.strides) // padded.itemsize
    index_type = np.int32 if padded.size < 2**31 else np.int64
    flat_points = ((points + reach) @ strides).astype(index_type)
    unresolved, resolved_per_group = np.arange(len(points)), np.zeros(len(groups), dtype=int)
    for offsets, offset_distances in batches:
        flat_offsets = (offsets @ strides).astype(index_type)
        still, resolved = [], []
        for block in np.array_split(unresolved, max(1, len(unresolved) * len(offsets) // _BLOCK_ELEMENTS)):
            hits = np.take(flat_targets, flat_points[block, None] + flat_offsets[None, :])
            found = hits.any(axis=1)
            distances[block[found]] = offset_distances[hits[found].argmax(axis=1)]
            still.append(block[~found])
            resolved.append(block[found])
        unresolved = np.concatenate(still)
        resolved_per_group += np.count_nonzero(groups[:, np.concatenate(resolved)], axis=1)
        undone = resolved_per_group < needed
        if not undone.any():
            return distances
        if not undone.all():  # the points only finished groups hold are moot
            unresolved = unresolved[groups[undone][:, unresolved].any(axis=0)]
    far, target_points = points[unresolved], np.argwhere(targets)
    if len(far) * len(target_points) > EXHAUSTIVE_PAIRS:
        distances[unresolved] = _kd_tree_distances(far, target_points, scale)
    else:
        distances[unresolved] = _exhaustive_distances(far, target_points, scale)
    return distances


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


@cache
def _reach(spacing: tuple[float, ...]) -> np.ndarray:
    """How far, in voxels along each axis, the offsets of :func:`_offset_batches` reach."""
    return np.max(np.abs(np.concatenate([offsets for offsets, _ in _offset_batches(spacing)])), axis=0)


def _lengths_mm(differences: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The length in mm of integer index differences (one row each): one formula for both searches, so a
    distance found either way is the same number."""
    return np.sqrt(sum((differences[:, axis] * scale[axis]) ** 2 for axis in range(len(scale))))


def _exhaustive_distances(points: np.ndarray, targets: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The distance from each point to the nearest of ``targets`` (indices), measured against all of them.

    A matrix product ranks the targets of each point (|t|^2 - 2 p.t: its squared distance less |p|^2); the
    nearest, and any other within the product's rounding error of it, are measured again with
    :func:`_lengths_mm`, so the result is the exact nearest distance, the same number the offset search gives."""
    scaled_points, scaled_targets = points * scale, targets * scale
    point_norms = np.einsum("ij,ij->i", scaled_points, scaled_points)
    target_norms = np.einsum("ij,ij->i", scaled_targets, scaled_targets)
    doubled = -2.0 * scaled_points
    nearest = np.empty(len(points))
    rows = max(1, _BLOCK_ELEMENTS // len(targets))
    for start in range(0, len(points), rows):
        block = slice(start, start + rows)
        ranks = doubled[block] @ scaled_targets.T
        ranks += target_norms
        index = np.arange(len(ranks))
        best = ranks.argmin(axis=1)
        closest = ranks[index, best] + _ROUNDING * (point_norms[block] + target_norms.max() + 1.0)
        found = _lengths_mm(points[block] - targets[best], scale)
        ranks[index, best] = np.inf
        tied = np.flatnonzero(ranks.min(axis=1) <= closest)  # another target as near, within rounding
        if len(tied):
            tied_rows, tied_targets = np.nonzero(ranks[tied] <= closest[tied, None])
            others = _lengths_mm(points[block][tied[tied_rows]] - targets[tied_targets], scale)
            np.minimum.at(found, tied[tied_rows], others)
        nearest[block] = found
    return nearest


def _kd_tree_distances(points: np.ndarray, targets: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The distance from each point to the nearest of ``targets`` (indices), by SciPy's k-d tree."""
    from scipy.spatial import cKDTree  # only for large masks far apart: its import costs more than most searches

    distances, _ = cKDTree(targets * scale).query(points * scale)
    return distances
