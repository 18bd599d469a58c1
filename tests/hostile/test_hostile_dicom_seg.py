"""Hostile input for ``btk dicom-seg``: a source series with patient identifiers in every identifying and free-text
attribute (and in its folder's name), stray and non-DICOM files, swapped arguments.

The SEG written back for the PACS may hold the identifiers of its own source study, copied from the source's
headers, in the attributes that identify the patient and the study alone (no free text, institution or other
people); nothing else btk prints or writes may show any of them.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from btk.io import open_nifti, save_label_map
from btk.preprocess.dicom_seg import KEPT_PATIENT_AND_STUDY_ATTRIBUTES
from tests.support.deid import IDENTIFIERS, write_identified_study
from tests.support.dicom_seg import SERIES_AND_IMAGE_TEXT, dciodvfy, identifying_elements
from tests.support.hostile import assert_no_identifiers, assert_no_leftovers, assert_user_error, files_under, run_btk


@pytest.fixture(scope="module")
def identified(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The identified T1 series in a folder named after the patient, and a label map on its native grid.

    The SEG may carry what identifies the patient and the study of its source (the identified test data put names
    even in the study's free-text fields, which the SEG must leave out).
    """
    from btk.preprocess import convert_dicom

    root = tmp_path_factory.mktemp("hostile-seg")
    study = write_identified_study(root / "Testpatient_Johanna_PID7734219", modalities=("t1n",))
    conversion = convert_dicom(study, root / "nifti")
    image = open_nifti(conversion.modalities["t1n"])
    labels = (image.get_fdata() > 400).astype("uint8") * 2  # bright tissue as oedema: a real, irregular shape
    labels[100:110, 100:110, 10:14] = 3
    save_label_map(labels, image, root / "labels.nii.gz")
    return study / "S010", root / "labels.nii.gz"


@pytest.mark.slow
def test_identifiers_only_in_the_patient_and_study_attributes_of_the_seg(identified, tmp_path: Path):
    series, labels = identified
    out = tmp_path / "pacs"
    result = run_btk("dicom-seg", labels, series, "-o", out / "seg.dcm", "--verbose")
    assert result.code == 0, result.output
    assert_no_identifiers(IDENTIFIERS, result.stdout, result.stderr)
    assert {p.name for p in out.iterdir()} == {"seg.dcm"}
    seg = pydicom.dcmread(out / "seg.dcm")
    source = pydicom.dcmread(next(series.iterdir()), stop_before_pixels=True)
    found = identifying_elements(seg, IDENTIFIERS)
    assert {"PatientName", "PatientID", "PatientBirthDate", "AccessionNumber"} <= set(found)
    assert all(value == str(source.get(keyword)) for keyword, value in found.items()), found  # copied, as they are
    assert set(found) <= KEPT_PATIENT_AND_STUDY_ATTRIBUTES, found  # identifiers only: no free text, no institution
    assert not set(found) & SERIES_AND_IMAGE_TEXT, found
    for free_text in ("PatientComments", "AdditionalPatientHistory", "StudyDescription", "InstitutionName"):
        assert free_text not in seg
    assert seg.SeriesDescription.startswith("btk consensus") and "ImageComments" not in seg
    assert dciodvfy(out / "seg.dcm")[0] == []


@pytest.mark.slow
def test_a_stray_file_in_the_series_is_named_without_the_identifier_in_its_path(identified, tmp_path: Path):
    series, labels = identified
    stray = series / "PID7734219_notes.txt"
    stray.write_text("scanned on a Tuesday\n")
    try:
        result = run_btk("dicom-seg", labels, series, "-o", tmp_path / "seg.dcm")
    finally:
        stray.unlink()
    assert_user_error(result, "_notes.txt: not a DICOM file")
    assert "[redacted]" in result.output
    assert_no_identifiers(IDENTIFIERS, result.stdout, result.stderr)
    assert_no_leftovers(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("mistake", ["swapped", "nifti-folder", "missing"])
def test_inputs_of_the_wrong_kind_are_one_clear_error(identified, tmp_path: Path, mistake: str):
    series, labels = identified
    one_image = next(series.iterdir())
    arguments, named = {
        "swapped": ((one_image, series), f"{one_image.name}: not a NIfTI file name"),  # DICOM for the label map
        "nifti-folder": ((labels, labels.parent / "nifti"), "not a DICOM file"),
        "missing": ((labels, tmp_path / "nowhere"), tmp_path / "nowhere"),
    }[mistake]
    before = files_under(series)
    result = run_btk("dicom-seg", *arguments, "-o", tmp_path / "out" / "seg.dcm")
    assert_user_error(result, named)
    assert_no_identifiers(IDENTIFIERS, result.stdout, result.stderr)
    assert_no_leftovers(tmp_path)
    assert files_under(series) == before
