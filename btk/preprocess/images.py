"""Loading and checking the input images of an exam: 3-D, finite, non-empty, readable."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from btk.errors import InputError
from btk.io import load_nifti

#: Smallest extent (voxels) of a usable 3-D MRI volume along any axis.
MIN_VOXELS_PER_AXIS = 8


def load_checked_image(path: Path) -> tuple[nib.Nifti1Image, np.ndarray]:
    """Read one input image and make sure it is a usable 3-D MRI volume.

    Raises:
        BtkError: the file is corrupt/truncated, not 3-D, too small, holds NaN/inf values or is constant.
    """
    image, data = load_nifti(path)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
        image = nib.Nifti1Image(data, image.affine, image.header)
    if data.ndim != 3:
        kind = "2-D" if data.ndim == 2 else f"{data.ndim}-D"
        raise InputError(
            f"a {kind} image (shape {data.shape}); each modality must be one 3-D volume",
            path=path,
            hint="give one 3-D volume per modality (split 4-D series first)",
        )
    if min(data.shape) < MIN_VOXELS_PER_AXIS:
        raise InputError(
            f"the volume is too small to be a brain MRI (shape {data.shape}, at least "
            f"{MIN_VOXELS_PER_AXIS} voxels per axis expected)",
            path=path,
        )
    if data.dtype.kind not in "iuf":
        raise InputError(f"voxel type {data.dtype} is not a number type", path=path)
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        count = int(np.size(data) - np.isfinite(data).sum())
        raise InputError(
            f"the image holds {count} NaN or infinite voxel values",
            path=path,
            hint="re-export the image from the scanner data or repair it",
        )
    if float(data.max()) <= float(data.min()):
        raise InputError("the image is constant (every voxel has the same value)", path=path)
    if not np.isfinite(image.affine).all() or abs(np.linalg.det(image.affine[:3, :3])) < 1e-6:
        raise InputError("the image has no valid orientation (its affine is singular)", path=path)
    return image, data
