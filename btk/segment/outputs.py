"""Checking an image's result and turning it into btk's output."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from btk.errors import ContainerError, InputError
from btk.io import load_label_map, open_nifti
from btk.labels import convert, get_convention
from btk.segment.registry import Algorithm


def checked_result(path: Path, reference: nib.Nifti1Image, algorithm: Algorithm, labels: str) -> np.ndarray:
    """The result as a label map in the ``labels`` convention, after checking it is a plausible one.

    Checks: readable; the input's grid (shape); only labels of the entry's convention; not all background
    unless the entry allows it. The caller writes it with the input's geometry, whatever the image wrote.
    """
    reason = algorithm.unsupported()
    if reason or algorithm.labels is None:
        raise InputError(f"{algorithm.name}: {reason}", hint="choose a segmentation algorithm btk can check")
    _, data = load_label_map(path)
    expected = tuple(reference.shape[:3])
    if data.shape != expected:
        raise ContainerError(
            f"the result has shape {data.shape}, the input {expected}: it is not on the input's grid",
            hint="the image resampled or cropped the exam; it cannot be used without registration",
        )
    declared = get_convention(algorithm.labels)
    unknown = sorted(set(np.flatnonzero(np.bincount(data.ravel())).tolist()) - set(declared.labels))
    if unknown:
        raise ContainerError(
            f"the result holds labels {', '.join(map(str, unknown[:10]))}, which the declared {declared.name} "
            f"convention does not have (valid: {', '.join(map(str, declared.labels))})",
            hint="fix the entry's 'labels' in the registry, or the image is broken",
        )
    if not data.any() and not algorithm.allow_empty:
        raise ContainerError(
            "the result is all background: the algorithm found no tumour",
            hint="check the inputs (BraTS space, skull-stripped?); set allow_empty in the entry if this is expected",
        )
    return data if get_convention(labels) == declared else convert(data, declared, labels)


def checked_image(path: Path, reference: nib.Nifti1Image) -> np.ndarray:
    """A synthesised image as float32 voxels, after checking it is a plausible MRI on the exam's grid.

    Checks: readable; the input's grid (shape); finite values; not constant (an empty or blank image). The
    caller writes it with the exam's geometry, whatever the image wrote.
    """
    try:
        data = np.asarray(open_nifti(path).dataobj, dtype=np.float32)
    except Exception as error:  # nibabel raises several types for a broken file
        raise ContainerError(f"cannot read the synthesised image ({error.__class__.__name__}: {error})") from None
    expected = tuple(reference.shape[:3])
    if data.shape != expected:
        raise ContainerError(
            f"the synthesised image has shape {data.shape}, the exam {expected}: it is not on the exam's grid",
            hint="the image resampled or cropped the exam; it cannot be used",
        )
    if not np.isfinite(data).all():
        raise ContainerError("the synthesised image holds NaN or infinite values", hint="the image is broken")
    if float(data.max()) == float(data.min()):
        raise ContainerError(
            "the synthesised image is blank (one value everywhere)", hint="see the algorithm's log for why"
        )
    return data
