"""Mapping a segmentation of an exam's ``brats/`` images back onto its native images (``btk native``), from any
space (in a native one the map is already there: it is checked and copied)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib

from btk.errors import InputError
from btk.io import guard_output, load_label_map, open_nifti, require_grid, require_nifti_name, save_label_map
from btk.modalities import canonical
from btk.preprocess.exam import ATLAS_TRANSFORM_ROLE, TRANSFORM_ROLES, PreprocessedExam
from btk.spaces import Grid, NativeSpace, Space


def to_native(
    segmentation: str | Path,
    exam_folder: str | Path,
    output: str | Path,
    modality: str | None = None,
    force: bool = False,
) -> Path:
    """Resample a segmentation of an exam's ``brats/`` images onto the native grid of one of its modalities.

    Args:
        segmentation: Label map on the grid of the exam's ``brats/`` images (240 x 240 x 155 in the brats-sri24
            space, 182 x 218 x 182 in brats-mni152, the T1c's own in native-t1c), e.g. a fused segmentation.
        exam_folder: The folder ``btk preprocess`` wrote.
        output: Where to write the native-space label map (.nii.gz or .nii); never inside an input.
        modality: Which native image's grid: ``t1n``, ``t1c``, ``t2w``, ``t2f`` (or t1, t2, flair); None: the
            T1 in an atlas space, the reference (T1c) in a native space, where the map is already on it and is
            only checked and copied.
        force: Replace ``output`` if it exists and btk wrote it.

    Returns:
        The written path.
    """
    wanted = None if modality is None else canonical(modality)
    require_nifti_name(Path(output))
    output = guard_output(output, [segmentation, exam_folder], force=force)
    exam = PreprocessedExam.load(exam_folder)
    space, outputs = exam.space, exam.outputs
    image, labels = load_label_map(segmentation)
    brats = open_nifti(outputs["brats/mask"])
    require_grid(
        image,
        brats.shape,
        brats.affine,
        path=segmentation,
        grid=_grid_name(space, brats),
        hint=f"give a segmentation of this exam's {space.name}-space images, with their header (affine)",
    )
    if isinstance(space, NativeSpace):
        wanted = wanted or space.reference
        if wanted not in space.modalities:
            raise InputError(
                f"this exam holds no {wanted} image: in the {space.name} space it has the "
                f"{', '.join(space.modalities)} alone, whose grid the segmentation is already on",
                path=exam.folder,
                hint=f"leave out the modality, or give {space.reference}",
            )
        save_label_map(labels, brats, output)
        return output
    wanted = wanted or "t1n"
    from btk.preprocess.resampling import resample

    reference = open_nifti(outputs[f"native_mask/{wanted}"])
    chain = [outputs[ATLAS_TRANSFORM_ROLE]] + ([outputs[TRANSFORM_ROLES[wanted]]] if wanted != "t1n" else [])
    moving = nib.Nifti1Image(labels.astype("float32"), image.affine)
    native = resample(moving, reference, chain, inverse=True, kind="labels")
    save_label_map(native, reference, output)
    return output


def _grid_name(space: Space, brats: nib.Nifti1Image) -> str:
    """The grid of an exam's ``brats/`` images, for messages."""
    if isinstance(space, NativeSpace):
        grid = Grid((int(brats.shape[0]), int(brats.shape[1]), int(brats.shape[2])), brats.affine)
        return f"this exam's grid ({space.name}: the {space.reference}'s own, {grid.describe()})"
    return f"this exam's atlas grid ({space.name}, {space.grid.describe()})"
