"""A real preprocessing run of the TCIA exam into the MNI152 space (BraTS 2024-2025 adult glioma), and the way
back to its native images: one run per session (``preprocessed_tcga_mni``, about a minute on two cores)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from btk.io import save_label_map
from btk.preprocess import PreprocessedExam, to_native
from btk.spaces import SPACES
from tests.support.preprocess import dice

pytestmark = pytest.mark.slow
MNI = SPACES["brats-mni152"]


def _voxels(path) -> np.ndarray:
    return np.asanyarray(nib.load(str(path)).dataobj)


def test_every_atlas_space_output_lies_exactly_on_the_mni_grid(preprocessed_tcga_mni):
    for role, path in preprocessed_tcga_mni.outputs.items():
        if role.startswith(("brats/", "brats_skull/")):
            image = nib.load(str(path))
            assert image.shape == (182, 218, 182), role
            assert np.array_equal(image.affine, MNI.grid.affine), role


def test_the_space_is_recorded_in_the_exams_provenance(preprocessed_tcga_mni):
    exam = PreprocessedExam.load(preprocessed_tcga_mni.folder)  # read back from the folder
    assert exam.space is MNI
    atlas = exam.provenance["atlas"]
    assert atlas["name"] == "brats-mni152" and atlas["template"] == "MNI152_T1_1mm_brain.nii.gz"
    assert atlas["template_sha256"] == MNI.template.sha256 and atlas["shape"] == [182, 218, 182]
    assert exam.provenance["parameters"]["atlas"] == "brats-mni152"
    assert exam.provenance["parameters"]["atlas_registration_input"] == "brain-extracted T1"


def test_the_registered_brain_matches_the_templates_brain(preprocessed_tcga_mni):
    """The exam's MNI-space brain mask against the template's brain: within 0.02 of the best Dice a rigid
    registration can reach (it keeps the exam's brain, smaller than the template's, at its size)."""
    mask = _voxels(preprocessed_tcga_mni.outputs["brats/mask"]) > 0
    template = _voxels(MNI.template_path()) > 0
    volumes = np.count_nonzero(mask), np.count_nonzero(template)
    bound = 2.0 * min(volumes) / sum(volumes)
    assert dice(mask, template) >= 0.90 and bound - dice(mask, template) <= 0.02
    offset = np.argwhere(mask).mean(axis=0) - np.argwhere(template).mean(axis=0)
    assert np.linalg.norm(offset) < 3.0  # mm, centres of mass
    t1 = _voxels(preprocessed_tcga_mni.outputs["brats/t1n"])
    assert not t1[~mask].any() and t1[mask].mean() > 0


def test_native_maps_an_mni_space_segmentation_back_onto_the_t1(preprocessed_tcga_mni, tmp_path):
    outputs = preprocessed_tcga_mni.outputs
    mask_image = nib.load(str(outputs["brats/mask"]))
    labels = (np.asanyarray(mask_image.dataobj) > 0).astype(np.uint8) * 2
    segmentation = tmp_path / "seg.nii.gz"
    save_label_map(labels, mask_image, segmentation)
    native = to_native(segmentation, preprocessed_tcga_mni.folder, tmp_path / "native.nii.gz")
    mapped, reference = nib.load(str(native)), nib.load(str(outputs["native_mask/t1n"]))
    assert mapped.shape == reference.shape and np.array_equal(mapped.affine, reference.affine)
    assert set(np.unique(np.asanyarray(mapped.dataobj))) == {0, 2}
    assert dice(np.asanyarray(mapped.dataobj) > 0, np.asanyarray(reference.dataobj) > 0) >= 0.95
