"""A real preprocessing run of the TCIA exam into the native-t1c space (BraTS meningioma radiotherapy): the T1c
alone, on its own grid, HD-BET brain mask, defaced by Quickshear, no registration; and ``btk native`` on it.
One run per session (``preprocessed_tcga_native``, about 30 s on two cores)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from btk.cli import main
from btk.errors import InputError
from btk.io import save_label_map, sha256
from btk.preprocess import PreprocessedExam, output_layout, to_native
from btk.preprocess.deface import face_mask
from btk.spaces import NATIVE_SPACES, SPACES
from tests.support.preprocess import raw_image

pytestmark = pytest.mark.slow
NATIVE = NATIVE_SPACES["native-t1c"]


def _voxels(path) -> np.ndarray:
    return np.asanyarray(nib.load(str(path)).dataobj)


def test_only_the_t1c_its_mask_and_overview_are_written(preprocessed_tcga_native):
    exam = PreprocessedExam.load(preprocessed_tcga_native.folder)
    assert set(exam.outputs) == set(output_layout(exam.case_id, mode="deface", space=NATIVE))
    assert set(exam.outputs) == {"brats/t1c", "brats/mask", "qc/t1c"}  # nothing moved: no transforms
    assert exam.images("brats") == {"t1c": exam.outputs["brats/t1c"]}


def test_the_outputs_lie_on_the_t1cs_own_grid_with_its_voxel_type(preprocessed_tcga_native):
    raw = nib.load(str(raw_image("t1c")))
    for role in ("brats/t1c", "brats/mask"):
        image = nib.load(str(preprocessed_tcga_native.outputs[role]))
        assert image.shape == raw.shape and np.array_equal(image.affine, raw.affine), role
    assert nib.load(str(preprocessed_tcga_native.outputs["brats/t1c"])).get_data_dtype() == raw.get_data_dtype()


def test_the_face_is_removed_and_every_brain_voxel_kept(preprocessed_tcga_native):
    outputs = preprocessed_tcga_native.outputs
    raw_file = nib.load(str(raw_image("t1c")))
    raw = np.asanyarray(raw_file.dataobj)
    defaced = _voxels(outputs["brats/t1c"])
    brain = _voxels(outputs["brats/mask"]) > 0
    face = face_mask(brain, raw_file.affine)
    assert brain.sum() > 1000 and not (face & brain).any()
    assert np.count_nonzero(raw[face] > 0.2 * raw[brain].mean()) > 10_000  # there was a face to remove
    assert not defaced[face].any()
    assert np.array_equal(defaced[~face], raw[~face])  # brain, skull and scalp as acquired


def test_the_space_and_the_defacing_are_recorded(preprocessed_tcga_native):
    exam = PreprocessedExam.load(preprocessed_tcga_native.folder)
    assert exam.space is NATIVE
    assert exam.provenance["atlas"] == {**NATIVE.record()}
    parameters = exam.provenance["parameters"]
    assert parameters["atlas"] == "native-t1c" and parameters["mode"] == "deface"
    assert parameters["registration"] == "none: the t1c keeps its own grid"
    assert parameters["defacing"]["buffer_mm"] == 10.0 and "Quickshear" in parameters["defacing"]["method"]
    assert set(exam.provenance["inputs"]) >= {"t1c"}
    assert exam.provenance["inputs"]["t1c"]["sha256"] == sha256(raw_image("t1c"))  # the input is untouched


def test_native_copies_a_segmentation_on_the_exams_grid_and_refuses_other_grids(preprocessed_tcga_native, tmp_path):
    outputs = preprocessed_tcga_native.outputs
    mask_image = nib.load(str(outputs["brats/mask"]))
    labels = (np.asanyarray(mask_image.dataobj) > 0).astype(np.uint8) * 3
    segmentation = tmp_path / "seg.nii.gz"
    save_label_map(labels, mask_image, segmentation)
    written = to_native(segmentation, preprocessed_tcga_native.folder, tmp_path / "native.nii.gz")
    assert np.array_equal(_voxels(written), labels)
    assert np.array_equal(nib.load(str(written)).affine, mask_image.affine)
    with pytest.raises(InputError, match="holds no t1n image"):
        to_native(segmentation, preprocessed_tcga_native.folder, tmp_path / "t1.nii.gz", modality="t1")
    sri24 = tmp_path / "sri24.nii.gz"
    grid = SPACES["brats-sri24"].grid
    save_label_map(np.zeros(grid.shape, np.uint8), nib.Nifti1Image(np.zeros(grid.shape), grid.affine), sri24)
    code = main(["native", str(sri24), str(preprocessed_tcga_native.folder), "-o", str(tmp_path / "bad.nii.gz")])
    assert code == 2 and not (tmp_path / "bad.nii.gz").exists()
