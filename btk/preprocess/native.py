"""Mapping an atlas-space segmentation back onto an exam's native images (``btk native``), from either space."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib

from btk.io import guard_output, load_label_map, open_nifti, require_grid, require_nifti_name, save_label_map
from btk.modalities import canonical
from btk.preprocess.exam import ATLAS_TRANSFORM_ROLE, TRANSFORM_ROLES, PreprocessedExam


def to_native(
    segmentation: str | Path,
    exam_folder: str | Path,
    output: str | Path,
    modality: str = "t1n",
    force: bool = False,
) -> Path:
    """Resample an atlas-space label map onto the native grid of one modality of a preprocessed exam.

    Args:
        segmentation: Label map on the exam's atlas grid (that of its ``brats/`` images: 240 x 240 x 155 in
            the brats-sri24 space, 182 x 218 x 182 in brats-mni152),
            e.g. a fused segmentation.
        exam_folder: The folder ``btk preprocess`` wrote.
        output: Where to write the native-space label map (.nii.gz or .nii); never inside an input.
        modality: Which native image's grid: ``t1n`` (default), ``t1c``, ``t2w``, ``t2f`` (or t1, t2, flair).
        force: Replace ``output`` if it exists and btk wrote it.

    Returns:
        The written path.
    """
    modality = canonical(modality)
    require_nifti_name(Path(output))
    output = guard_output(output, [segmentation, exam_folder], force=force)
    exam = PreprocessedExam.load(exam_folder)
    outputs = exam.outputs
    image, labels = load_label_map(segmentation)
    brats = open_nifti(outputs["brats/mask"])
    require_grid(
        image,
        brats.shape,
        brats.affine,
        path=segmentation,
        grid=f"this exam's atlas grid ({exam.space.name}, {exam.space.grid.describe()})",
        hint=f"give a segmentation of this exam's {exam.space.name}-space images, with their header (affine)",
    )
    from btk.preprocess.resampling import resample

    reference = open_nifti(outputs[f"native_mask/{modality}"])
    chain = [outputs[ATLAS_TRANSFORM_ROLE]] + ([outputs[TRANSFORM_ROLES[modality]]] if modality != "t1n" else [])
    moving = nib.Nifti1Image(labels.astype("float32"), image.affine)
    native = resample(moving, reference, chain, inverse=True, kind="labels")
    save_label_map(native, reference, output)
    return output
