"""Preprocessor inputs: DICOM conversion and recognition, bad inputs, reproducible registration, defacing."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from btk.cli import main
from btk.errors import BtkError
from btk.preprocess import convert_dicom
from btk.preprocess.deface import face_mask
from btk.preprocess.modalities import Candidate, choose, modality_from_parameters, modality_from_text
from btk.preprocess.registration import RegistrationSettings, register
from tests.support.preprocess import PATIENT_ID, PATIENT_NAME, RAW, REFERENCE, raw_image, write_dicom_study


@pytest.mark.parametrize(
    ("name", "modality"),
    [
        ("T1_AX_OtherEXampleTCIA_TCGA-FG-6692_Si_TCGA-FG-6692_T1_AX_SE_10_se2d1_t1", "t1n"),
        ("MRHR_T1_AX_POST_GAD_OtherEXampleTCIA_TCGA-FG-6692_se2d1r_t1c", "t1c"),
        ("MRHR_T2_AX_OtherEXampleTCIA_TCGA-FG-6692_MRHR_T2_AX_SE_2_tse2d1_11_t2", "t2w"),
        ("MRHR_FLAIR_AX_OtherEXampleTCIA_TCGA-FG-6692_tir2d1_21_fla", "t2f"),
        ("sub-01_T2w_FLAIR", "t2f"),
        ("BraTS-GLI-00001-000-t1c", "t1c"),
        ("Ax T1 MPRAGE +C", "t1c"),
        ("localizer", None),
    ],
)
def test_modality_from_names(name, modality):
    assert modality_from_text(name) == modality


def test_modality_from_sequence_parameters():
    assert modality_from_parameters({"EchoTime": 0.12, "RepetitionTime": 9.0, "InversionTime": 2.5}) == "t2f"
    assert modality_from_parameters({"EchoTime": 0.1, "RepetitionTime": 4.0}) == "t2w"
    assert modality_from_parameters({"EchoTime": 0.009, "RepetitionTime": 0.5}, contrast_agent=True) == "t1c"
    assert modality_from_parameters({"EchoTime": 0.009, "RepetitionTime": 0.5}) == "t1n"


def test_two_t1c_series_resolved_by_the_documented_rule(tmp_path):
    coarse = Candidate(tmp_path / "a.nii.gz", "T1 POST GAD", "t1c", series_number=20, voxel_volume=4.4)
    early = Candidate(tmp_path / "b.nii.gz", "T1 POST GAD 3D", "t1c", series_number=7, voxel_volume=1.0)
    late = Candidate(tmp_path / "c.nii.gz", "T1 POST GAD 3D", "t1c", series_number=9, voxel_volume=1.0)
    chosen, notes = choose([coarse, early, late])
    assert chosen["t1c"] is late
    assert len(notes) == 1 and "3 candidate T1c" in notes[0]


@pytest.mark.slow
def test_dicom_study_is_converted_recognised_and_anonymised(tmp_path):
    study = write_dicom_study(tmp_path / "dicom")
    result = convert_dicom(study, tmp_path / "nifti")
    assert len(result.series) == 4
    assert set(result.modalities) == {"t1n", "t1c", "t2w", "t2f"}
    for modality, path in result.modalities.items():  # same voxels at the same places in the world
        ours, source = (
            nib.as_closest_canonical(nib.load(str(path))),
            nib.as_closest_canonical(nib.load(str(raw_image(modality)))),
        )
        assert ours.shape == source.shape
        assert np.allclose(ours.affine, source.affine, atol=1e-3)
        assert np.array_equal(np.asanyarray(ours.dataobj), np.asanyarray(source.dataobj))
    secrets = [s.lower().encode() for s in (*PATIENT_NAME.split("^"), PATIENT_ID, "19580312")]
    for path in (tmp_path / "nifti").iterdir():
        content = nib.load(str(path)).header.binaryblock if path.name.endswith(".nii.gz") else path.read_bytes()
        assert not any(s in content.lower() or s in path.name.lower().encode() for s in secrets), path
    assert main(["convert", str(study), "-o", str(tmp_path / "cli")]) == 0
    assert len(list((tmp_path / "cli").glob("*.nii.gz"))) == 4


@pytest.mark.slow
def test_registration_is_reproducible(tmp_path):
    # ITK fixes its thread count when it first runs in a process: run it here first, with every core.
    ants = pytest.importorskip("ants")
    ants.resample_image(ants.image_read(str(raw_image("t1n"))), (2, 2, 2), use_voxels=False, interp_type=1)
    settings = RegistrationSettings(iterations=(200, 100, 50))
    for name in ("a.mat", "b.mat"):
        register(raw_image("t1n"), raw_image("t2f"), tmp_path / name, settings)
    assert (tmp_path / "a.mat").read_bytes() == (tmp_path / "b.mat").read_bytes()


@pytest.mark.slow
def test_face_mask_lies_in_front_of_and_below_the_brain():
    mask_image = nib.load(str(REFERENCE / "mask_hdbet_brats-space" / "OtherEXampleFromTCIA_hdbet_mask_brats.nii.gz"))
    brain = np.asanyarray(mask_image.dataobj) > 0
    face = face_mask(brain, mask_image.affine)
    assert face.any() and not (face & brain).any()
    world = nib.affines.apply_affine(mask_image.affine, np.argwhere(face))
    brain_world = nib.affines.apply_affine(mask_image.affine, np.argwhere(brain))
    assert world[:, 1].mean() > brain_world[:, 1].mean()  # anterior
    assert world[:, 2].mean() < brain_world[:, 2].mean()  # inferior


# ---- bad inputs: each a clear error, a non-zero exit, and nothing left in the output's folder --------------


def copy_exam(tmp_path):
    exam = tmp_path / "exam"
    shutil.copytree(RAW, exam)
    return exam


def t1_of(exam):
    return next(exam.glob("*_t1.nii.gz"))


def truncate(exam):
    path = t1_of(exam)
    path.write_bytes(path.read_bytes()[:20000])
    return path.name


def four_d(exam):
    path = t1_of(exam)
    image = nib.load(str(path))
    data = np.asanyarray(image.dataobj)
    nib.save(nib.Nifti1Image(np.stack([data] * 3, axis=-1), image.affine), str(path))
    return "4-D"


def two_d(exam):
    path = t1_of(exam)
    image = nib.load(str(path))
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj)[:, :, 10], image.affine), str(path))
    return "2-D"


def with_nan(exam):
    path = t1_of(exam)
    image = nib.load(str(path))
    data = np.asanyarray(image.dataobj).astype(np.float32)
    data[100:110, 100:110, 10] = np.nan
    nib.save(nib.Nifti1Image(data, image.affine), str(path))
    return "NaN"


def only_one_modality(exam):
    for path in exam.iterdir():
        if not path.name.endswith("_t1.nii.gz"):
            path.unlink()
    return "missing T1c, T2, FLAIR"


def empty(exam):
    for path in exam.iterdir():
        path.unlink()
    return "empty"


def not_a_brain(exam):
    rng = np.random.default_rng(0)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    for path in exam.iterdir():  # a smooth noise phantom, same for every modality
        phantom = (rng.random((96, 96, 64)) * 1000).astype(np.int16)
        nib.save(nib.Nifti1Image(phantom, affine), str(path))
    return "does not look like a brain"


@pytest.mark.parametrize("damage", [truncate, four_d, two_d, with_nan, only_one_modality, empty, not_a_brain])
@pytest.mark.slow
def test_bad_exam_gives_a_clear_error_and_leaves_nothing(tmp_path, damage, capsys):
    exam = copy_exam(tmp_path)
    expected = damage(exam)
    out_parent = tmp_path / "out"
    out_parent.mkdir()
    code = main(["preprocess", str(exam), "-o", str(out_parent / "case"), "--fast", "--device", "cpu"])
    error = capsys.readouterr().err
    assert code == 2
    assert expected in error and "Traceback" not in error
    assert list(out_parent.iterdir()) == []


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(["preprocess", str(RAW), "-o", str(blocker / "case"), "--fast"])
    assert code == 2
    assert "cannot write to the output folder" in capsys.readouterr().err


def test_existing_unrelated_output_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(BtkError, match="not a folder btk wrote"):
        from btk.preprocess import Preprocessor

        Preprocessor(device="cpu", fast=True).run(RAW, out)
    assert (out / "precious.txt").read_text() == "keep me"


def test_provenance_is_the_done_marker(tmp_path):
    from btk.preprocess import PreprocessedExam

    folder = tmp_path / "exam"
    folder.mkdir()
    assert not PreprocessedExam.is_complete(folder)
    (folder / "provenance.json").write_text(
        json.dumps({"case_id": "x", "outputs": {"brats/t1n": "brats/x-t1n.nii.gz"}})
    )
    assert not PreprocessedExam.is_complete(folder)  # listed output missing
    with pytest.raises(BtkError, match="incomplete"):
        PreprocessedExam.load(folder)
