"""Size of a region: its volume and its three largest orthogonal diameters.

The diameters are the region's extents along its three principal axes (the eigenvectors of the covariance of
its voxel positions), largest first: the A x B x C of a report, aligned with the tumour rather than with the
scanner. Each extent is measured edge to edge over the voxels' cubes (not centre to centre), so a box of
10 x 20 x 30 voxels of 1 mm measures exactly 30 x 20 x 10 mm, in any orientation of the grid.
"""

from __future__ import annotations

import numpy as np


def voxel_volume_ml(affine: np.ndarray) -> float:
    """The volume of one voxel in millilitres (the absolute determinant of the affine's 3 x 3 part / 1000)."""
    return abs(float(np.linalg.det(np.asarray(affine, dtype=np.float64)[:3, :3]))) / 1000.0


def volume_ml(mask: np.ndarray, affine: np.ndarray) -> float:
    """The volume of a boolean mask in millilitres."""
    return int(np.count_nonzero(mask)) * voxel_volume_ml(affine)


def world_points(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The world positions (mm) of the centres of a mask's voxels, one row each."""
    indices = np.argwhere(mask).astype(np.float64)
    affine = np.asarray(affine, dtype=np.float64)
    return indices @ affine[:3, :3].T + affine[:3, 3]


def extent_mm(points: np.ndarray, direction: np.ndarray, affine: np.ndarray) -> float:
    """The edge-to-edge extent of voxels (centres ``points``) along the unit vector ``direction``.

    The extent of the voxels' centres plus the width of one voxel's cube projected on ``direction``.
    """
    projection = points @ direction
    voxel_width = float(np.sum(np.abs(direction @ np.asarray(affine, dtype=np.float64)[:3, :3])))
    return float(projection.max() - projection.min()) + voxel_width


def principal_diameters_mm(mask: np.ndarray, affine: np.ndarray) -> tuple[float, float, float]:
    """The three largest orthogonal diameters (mm) of a mask: its extents along its principal axes.

    Args:
        mask: A boolean mask (3-D).
        affine: Its voxel-to-world affine.

    Returns:
        The three extents, largest first; zeros for an empty mask.
    """
    points = world_points(mask, affine)
    if len(points) == 0:
        return (0.0, 0.0, 0.0)
    if len(points) == 1:
        axes = np.eye(3)
    else:
        _, axes = np.linalg.eigh(np.cov(points, rowvar=False))
    extents = sorted((extent_mm(points, axes[:, k], affine) for k in range(3)), reverse=True)
    return (extents[0], extents[1], extents[2])
