"""Defacing: remove the face but keep skull and brain, by a quickshear-style cut computed from the brain mask.

In the sagittal plane (anterior and superior coordinates, in mm), the convex hull of the brain mask is
computed; its edge facing anterior-inferior (towards the face) defines a cutting plane, moved
``margin_mm`` away from the brain. Everything beyond the plane (the face) is set to zero.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
from scipy.spatial import ConvexHull

from btk.errors import InputError

#: How far (mm) the cut is moved from the brain towards the face.
DEFACE_MARGIN_MM = 10.0
_TOWARDS_FACE = np.array([1.0, -1.0]) / np.sqrt(2.0)  # (anterior, inferior)


def face_mask(brain_mask: np.ndarray, affine: np.ndarray, margin_mm: float = DEFACE_MARGIN_MM) -> np.ndarray:
    """Boolean array of the voxels in front of and below the shear plane (the face), on the mask's grid."""
    coordinates = _anterior_superior(brain_mask.shape, affine)
    brain_points = coordinates[brain_mask.reshape(-1) > 0]
    if len(brain_points) < 10:
        raise InputError("the brain mask is empty; cannot compute where the face is")
    hull = ConvexHull(np.unique(np.round(brain_points, 1), axis=0))
    normals = hull.equations[:, :2]  # outward unit normals; equations: n.x + offset <= 0 inside
    facing = int(np.argmax(normals @ _TOWARDS_FACE))
    normal, offset = normals[facing], hull.equations[facing, 2]
    distance = coordinates @ normal + offset
    return (distance > margin_mm).reshape(brain_mask.shape)


def _anterior_superior(shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """Anterior (RAS y) and superior (RAS z) world coordinates of every voxel, shape (N, 2)."""
    indices = np.indices(shape, dtype=np.float32).reshape(3, -1)
    world = affine[1:3, :3].astype(np.float32) @ indices + affine[1:3, 3:4].astype(np.float32)
    return world.T


def deface(image: nib.Nifti1Image, data: np.ndarray, brain_mask: np.ndarray) -> np.ndarray:
    """``data`` with the face (as found from ``brain_mask`` on the same grid) set to zero."""
    defaced = np.array(data, copy=True)
    defaced[face_mask(brain_mask, image.affine)] = 0
    return defaced
