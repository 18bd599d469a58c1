"""Defacing by Quickshear (Schimke & Hale 2011): remove the face, keep skull and brain, from the brain mask alone.

The method, as the paper and brainles-preprocessing's ``QuickshearDefacer`` (the BraTS orchestrator's defacer)
describe it:

1. Bring the mask's voxel axes to the anatomical ones (left-right, anterior-posterior, inferior-superior;
   flips and permutations only, :func:`nibabel.orientations.io_orientation`).
2. Project the mask onto the sagittal plane (any brain voxel along left-right).
3. Take the lower convex hull of that profile, walking from the most anterior point backwards (Andrew's
   monotone chain); its first edge runs from the frontal pole down to the skull base: it faces the face.
4. Shift the line of that edge down (inferior) by a buffer: ``buffer_mm``, 10 mm by default. Quickshear's
   buffer is 10 *voxels*, applied on a 1 mm atlas grid (brainles-preprocessing registers the brain to SRI24
   before shearing): 10 mm there, and 10 mm here on any grid, also a native one with 5 mm slices.
5. Zero every voxel below the shifted line, across the whole left-right extent: the face side of the plane.

Every brain voxel lies on or above the hull's line (the hull holds the whole profile), so the buffer keeps the
cut at least ``buffer_mm`` below the brain: no brain voxel is ever removed.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform

from btk.errors import InputError

#: How far (mm) the shearing plane is moved from the brain towards the face (Quickshear: 10 voxels of 1 mm).
DEFACE_BUFFER_MM = 10.0
#: What the provenance records of the method.
METHOD = "Quickshear (Schimke & Hale 2011) from the brain mask"
_RAS = axcodes2ornt("RAS")
#: Keeps a brain voxel lying exactly on the hull's line (buffer 0) clear of rounding.
_ROUNDING_MM = 1e-6


def face_mask(brain_mask: np.ndarray, affine: np.ndarray, buffer_mm: float = DEFACE_BUFFER_MM) -> np.ndarray:
    """Boolean array of the voxels on the face side of the Quickshear plane, on the mask's grid.

    Args:
        brain_mask: The brain mask (non-zero: brain), 3-D, on the grid of ``affine``.
        affine: The grid's voxel-to-world affine (RAS, mm).
        buffer_mm: Distance of the plane below the brain's lower hull (mm, >= 0).

    Raises:
        InputError: the mask holds no brain, or too little to find a plane (one sagittal column).
    """
    if not (np.isfinite(buffer_mm) and buffer_mm >= 0):
        raise InputError(f"the defacing buffer must be a distance >= 0 mm, got {buffer_mm}")
    start = io_orientation(np.asarray(affine, dtype=float))
    mask = apply_orientation(np.asarray(brain_mask) > 0, ornt_transform(start, _RAS))  # index grows to R, A, S
    spacing = np.empty(3)
    spacing[start[:, 0].astype(int)] = np.linalg.norm(np.asarray(affine, dtype=float)[:3, :3], axis=0)
    profile = mask.any(axis=0)  # the sagittal projection: (anterior, superior)
    columns = np.flatnonzero(profile.any(axis=1))
    if len(columns) < 2:
        raise InputError(
            "the brain mask is empty (or one voxel thin from front to back): cannot find where the face is",
            hint="check the brain extraction of this image (its brain mask)",
        )
    lowest = profile[columns].argmax(axis=1)  # the lowest brain voxel of each column
    # Quickshear's frame: x grows from the face backwards (posterior), y upwards (superior), in mm
    slope, intercept = _first_lower_hull_edge(-columns * spacing[1], lowest * spacing[2])
    back = -np.arange(profile.shape[0]) * spacing[1]
    up = np.arange(profile.shape[1]) * spacing[2]
    plane = slope * back + intercept - buffer_mm - _ROUNDING_MM
    face = np.broadcast_to(up[None, :] < plane[:, None], mask.shape)
    return np.ascontiguousarray(apply_orientation(face, ornt_transform(_RAS, start)))


def deface(image: nib.Nifti1Image, data: np.ndarray, brain_mask: np.ndarray) -> np.ndarray:
    """``data`` with the face (as found from ``brain_mask`` on the same grid) set to zero."""
    defaced = np.array(data, copy=True)
    defaced[face_mask(brain_mask, image.affine)] = 0
    return defaced


def _first_lower_hull_edge(back: np.ndarray, up: np.ndarray) -> tuple[float, float]:
    """Slope and intercept (``up = slope * back + intercept``) of the first edge of the lower convex hull of the
    points, starting at the most anterior one (the smallest ``back``)."""
    order = np.argsort(back, kind="stable")
    points = np.column_stack([back[order], up[order]])
    hull: list[np.ndarray] = []
    for point in points:  # Andrew's monotone chain, lower half: drop the last point while it makes no left turn
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], point) <= 0:
            hull.pop()
        hull.append(point)
    (x0, y0), (x1, y1) = hull[0], hull[1]
    slope = (y1 - y0) / (x1 - x0)
    return float(slope), float(y0 - slope * x0)


def _cross(origin: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float((a[0] - origin[0]) * (b[1] - origin[1]) - (a[1] - origin[1]) * (b[0] - origin[0]))
