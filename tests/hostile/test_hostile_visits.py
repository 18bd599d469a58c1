"""Hostile and careless patient folders for ``btk run --longitudinal``: visits in mixed spaces or forms, of two
patients, undatable, a visit that fails, and identifiers in the folder names and headers."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from btk.deid import output_salt, pseudonym, save_salt
from btk.spaces import SPACES
from tests.support.deid import IDENTIFIERS, write_identified_study
from tests.support.hostile import assert_no_identifiers, assert_no_leftovers, assert_user_error, run_btk
from tests.support.pipeline import BRATS_EXAM, EXAMPLE_CANDIDATES, RAW_EXAM, brats_batch
from tests.support.preprocess import PATIENT_ID

MNI = SPACES["brats-mni152"]
#: The study dates written into the DICOM visits: used for their order, never written anywhere.
DATES = {"1.2.826.0.1.3680043.8.498.5101": "20030716", "1.2.826.0.1.3680043.8.498.5102": "20030115"}
HIDDEN_DATES = [*DATES.values(), "2003-07-16", "2003-01-15"]


def brats_visit(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for image in BRATS_EXAM.glob("*.nii.gz"):
        (folder / f"{folder.name}-{image.name.rsplit('-', 1)[-1]}").symlink_to(image)
    return folder


def dicom_visit(folder: Path, study_uid: str, date: str, patient_id: str = PATIENT_ID) -> Path:
    """A real DICOM study of the TCIA exam's T1 only (it fails at discovery: no T1c, T2, FLAIR), identifiers in
    every field, dated ``date``."""
    write_identified_study(folder, study_uid, ("t1n",))
    for path in folder.rglob("IM*"):
        dataset = pydicom.dcmread(path)
        dataset.StudyDate, dataset.PatientID = date, patient_id
        dataset.save_as(path, enforce_file_format=True)
    return folder


def test_visits_in_two_atlas_spaces_are_refused_before_anything_is_written(tmp_path: Path):
    patient = tmp_path / "patient"
    brats_visit(patient / "visit-1")
    mni = patient / "visit-2"
    mni.mkdir()
    for modality in ("t1n", "t1c", "t2w", "t2f"):
        nib.save(nib.Nifti1Image(np.zeros(MNI.shape, np.int16), MNI.grid.affine), str(mni / f"v2-{modality}.nii.gz"))
    out = tmp_path / "out"
    result = run_btk("run", patient, "-o", out, "--candidates", EXAMPLE_CANDIDATES, "--longitudinal")
    assert_user_error(result, "visit-2 (brats-mni152)", "brats-sri24")
    assert_no_leftovers(out)


def test_a_run_preprocessing_to_another_space_is_refused(tmp_path: Path):
    patient = tmp_path / "patient"
    patient.mkdir()
    for name in ("visit-1", "visit-2"):
        (patient / name).symlink_to(RAW_EXAM)  # native space: preprocessed to the run's space
    result = run_btk(
        "run", patient, "-o", tmp_path / "out", "--candidates", EXAMPLE_CANDIDATES, "--visits", "visit-2,visit-1",
        "--atlas", "brats-mni152",
    )  # fmt: skip
    assert_user_error(result, "visit-2 (brats-mni152)", "--atlas brats-sri24")
    assert_no_leftovers(tmp_path / "out")


def test_one_exam_dicom_mixed_with_nifti_and_a_visit_named_compare_are_refused(tmp_path: Path):
    single = brats_visit(tmp_path / "one" / "visit-1").parent
    result = run_btk("run", single, "-o", tmp_path / "out", "--candidates", EXAMPLE_CANDIDATES, "--longitudinal")
    assert_user_error(result, "two or more visits; found 1")
    mixed = tmp_path / "mixed"
    brats_visit(mixed / "visit-1")
    dicom_visit(mixed / "visit-2", "1.2.826.0.1.3680043.8.498.5109", "20030101")
    result = run_btk("run", mixed, "-o", tmp_path / "out", "--candidates", EXAMPLE_CANDIDATES, "--longitudinal")
    assert_user_error(result, "mix DICOM studies and NIfTI exam folders")
    assert_no_identifiers(IDENTIFIERS, result.output)
    named = tmp_path / "named"
    brats_visit(named / "visit-1")
    brats_visit(named / "compare")
    order = ["--visits", "compare,visit-1"]
    result = run_btk("run", named, "-o", tmp_path / "out", "--candidates", EXAMPLE_CANDIDATES, *order)
    assert_user_error(result, "a visit is named 'compare'")
    assert_no_leftovers(tmp_path / "out")


@pytest.mark.parametrize("problem", ["two patients", "same date", "no date", "--visits"])
def test_dicom_visits_that_cannot_be_ordered_are_refused_without_showing_an_identifier(tmp_path: Path, problem):
    patient = tmp_path / "Testpatient_Johanna_PID7734219"
    (first, early), (second, late) = DATES.items()
    dicom_visit(patient / "a", first, early)
    other = {"two patients": ("20030716", "PID0000001"), "same date": (early, PATIENT_ID), "no date": ("", PATIENT_ID)}
    date, patient_id = other.get(problem, (late, PATIENT_ID))
    dicom_visit(patient / "b", second, date, patient_id)
    extra = ["--visits", "a,b"] if problem == "--visits" else ["--longitudinal"]
    result = run_btk("run", patient, "-o", tmp_path / "out", "--candidates", EXAMPLE_CANDIDATES, *extra)
    expected = {
        "two patients": "of 2 different patients",
        "same date": "the same StudyDate and StudyTime",
        "no date": "have no valid StudyDate",
        "--visits": "DICOM visits are ordered by their StudyDate",
    }[problem]
    assert_user_error(result, expected)
    assert_no_identifiers([*IDENTIFIERS, *HIDDEN_DATES, "PID0000001"], result.output)
    assert_no_leftovers(tmp_path / "out")


@pytest.mark.slow  # btk run starts worker processes: tens of seconds on a busy machine
def test_dicom_visits_are_ordered_by_date_and_no_identifier_or_date_reaches_an_output(tmp_path: Path):
    """Folder names hold the patient's name and ID, the later study sorts first by folder; both visits fail (no
    T1c, T2, FLAIR), so the comparison is refused, and nothing identifies the patient or the dates."""
    patient = tmp_path / "Testpatient_Johanna_PID7734219"
    for folder, (uid, date) in zip(("a_Johanna_PID7734219", "b_Testpatient"), DATES.items()):
        dicom_visit(patient / folder, uid, date)
    out = tmp_path / "out"
    salt = output_salt(out)
    save_salt(out)  # the pseudonyms are known before the run, for the candidates' folders
    names = {uid: pseudonym(uid, salt) for uid in DATES}
    for name in names.values():
        shutil.copytree(EXAMPLE_CANDIDATES, tmp_path / "candidates" / name)
    result = run_btk("run", patient, "-o", out, "--candidates", tmp_path / "candidates", "--longitudinal")
    assert result.code == 1, result.output
    rows = {row["study"]: row for row in csv.DictReader((out / "manifest.csv").open())}
    early, late = (names[uid] for uid in sorted(DATES, key=DATES.get))
    assert {name: row["visit"] for name, row in rows.items()} == {early: "1", late: "2"}
    flat = " ".join(result.output.split())
    assert f"Follow-up comparison refused: no comparison: visit {early} failed at discover: missing modality" in flat
    assert "visits of one patient" in (out / "summary.html").read_text(encoding="utf-8")
    assert not (out / "compare").exists()
    assert_no_identifiers([*IDENTIFIERS, *HIDDEN_DATES], out, result.output)


@pytest.mark.slow  # three runs of two visits
def test_a_failed_visit_refuses_the_comparison_and_removes_an_earlier_one(tmp_path: Path):
    patient, candidates = brats_batch(tmp_path, ["visit-1", "visit-2"], [2, 2])
    out = tmp_path / "out"
    command = ["run", patient, "-o", out, "--candidates", candidates, "--longitudinal", "--method", "mav", "--no-pdf"]
    assert run_btk(*command).code == 0
    assert (out / "compare" / "compare.json").is_file()

    shutil.rmtree(out / "visit-2")  # processed again, now with a candidate cut to the wrong grid
    off_grid = sorted((candidates / "visit-2").iterdir())[0]
    image = nib.load(off_grid)
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj)[:200], image.affine), off_grid)
    failed = run_btk(*command)
    assert failed.code == 1, failed.output
    flat = " ".join(failed.output.split())
    assert "Follow-up comparison refused: no comparison: visit visit-2 failed at segment" in flat
    assert not (out / "compare").exists() and not (out / ".btk" / "compare.json").exists()
    baseline = (out / "visit-1" / "report" / "report.html").read_text(encoding="utf-8")
    assert "Visit 1 of 2 of this patient" in baseline and "no comparison: visit visit-2 failed at segment" in baseline
    assert "compare.html" not in baseline
    summary = (out / "summary.html").read_text(encoding="utf-8")
    assert "no comparison: visit visit-2 failed at segment" in summary

    shutil.copyfile(sorted((candidates / "visit-1").iterdir())[0], off_grid)  # mended
    mended = run_btk(*command)
    assert mended.code == 0, mended.output
    assert "Follow-up comparison (ran)" in mended.output and (out / "compare" / "compare.json").is_file()
