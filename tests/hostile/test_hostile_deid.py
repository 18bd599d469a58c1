"""Hostile input for de-identification: patient identifiers in every free-text DICOM field, `btk convert --force`
over an earlier conversion, and incomplete DICOM series.

The DICOM studies are the shipped TCIA exam written as real DICOM (tests/support/preprocess.py) with
identifiers injected into every identifying and every free-text attribute. Whatever btk prints or writes is
searched for each identifier: file names, file contents (NIfTI headers included), standard output and error.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pydicom
import pytest

from btk.deid import IdentifierGuard, acquisition_words, allowed_sidecar, guard, pseudonym
from tests.support.deid import FREE_TEXT, IDENTIFIERS, LEAK, STUDY_UID, write_identified_study
from tests.support.hostile import assert_no_identifiers, assert_no_leftovers, assert_user_error, files_under, run_btk
from tests.support.pipeline import EXAMPLE_CANDIDATES, brats_batch


@pytest.fixture(scope="module")
def identified(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_identified_study(tmp_path_factory.mktemp("identified") / "dicom")


def copy_of(study: Path, folder: Path, *series: str) -> Path:
    """A copy of ``study`` (all series, or the folders named)."""
    for name in series or [p.name for p in study.iterdir()]:
        shutil.copytree(study / name, folder / name)
    return folder


def error_line(output: str) -> str:
    """The error message (rich may wrap it)."""
    return " ".join(output[output.index("Error:") :].split())


@pytest.fixture(scope="module")
def converted(identified: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("converted") / "nifti"
    return run_btk("convert", identified, "-o", out), out


@pytest.mark.slow
def test_identifiers_reach_no_output_of_convert(converted):
    result, out = converted
    assert result.code == 0, result.output
    assert_no_identifiers(IDENTIFIERS, out, result.stdout, result.stderr)
    assert {p.name for p in out.glob("*.nii.gz")} == {f"series{n}.nii.gz" for n in (2, 5, 10, 13)}
    assert "MRHR T1 AX POST GAD" in " ".join(result.stderr.split())  # the acquisition words are still shown


def test_sidecars_keep_acquisition_keys_only(converted):
    _, out = converted
    sidecar = json.loads((out / "series13.json").read_text())
    assert "SeriesDescription" not in sidecar and "ProtocolName" not in sidecar and "InstitutionName" not in sidecar
    assert sidecar["EchoTime"] == pytest.approx(0.009) and sidecar["SeriesNumber"] == 13
    assert sidecar["ContrastAgentRecorded"] is True  # the agent's (free-text) name is not kept, its presence is
    assert allowed_sidecar({"ImageComments": LEAK, "AcquisitionDateTime": "2001", "FlipAngle": 90}) == {"FlipAngle": 90}


@pytest.mark.parametrize("attribute", FREE_TEXT)
def test_every_free_text_field_was_injected(identified: Path, attribute: str):
    """The test data carry identifiers where the cases above say (a test that cannot fail is a defect)."""
    dataset = pydicom.dcmread(next((identified / "S013").iterdir()), stop_before_pixels=True)
    assert "Testpatient" in str(dataset.get(attribute)) or "PID7734219" in str(dataset.get(attribute))


def test_the_guard_redacts_names_ids_and_dates_wherever_they_stand():
    own = IdentifierGuard()
    own.register(["Testpatient^Johanna", "Testpatient", "Johanna", "PID7734219", "19580312", "Ann"])
    assert (
        own.redact("/data/TESTPATIENT_scan/PID7734219x 19580312 Anna Ann 119580312")
        == "/data/[redacted]_scan/[redacted]x [redacted] Anna [redacted] 119580312"
    )
    assert own.redact_data({"case_id": "Johanna", "n": 19580312, "Johanna.nii.gz": 1}) == {
        "case_id": "[redacted]",
        "n": 19580312,
        "[redacted].nii.gz": 1,
    }
    assert acquisition_words("MRHR T1 AX POST GAD Testpatient PID7734219") == "MRHR T1 AX POST GAD"
    assert pseudonym(STUDY_UID, "salt-a") == pseudonym(STUDY_UID, "salt-a") != pseudonym(STUDY_UID, "salt-b")


@pytest.mark.slow  # btk run starts worker processes: tens of seconds on a busy machine
def test_identifiers_in_every_field_reach_no_output_of_run(identified: Path, tmp_path: Path):
    """`btk run` on a tree holding the identified study (no FLAIR: it fails at discovery, with its series listed),
    a broken DICOM file named after the patient, and an exam with candidates that goes all the way to its
    report: manifest, summaries, markers, logs and console."""
    studies, candidates = brats_batch(tmp_path, ["ok-case"], [2])
    patient_folder = studies / "Testpatient_Johanna_PID7734219"
    copy_of(identified, patient_folder, "S010", "S013", "S002")
    (patient_folder / "PID7734219_bad.dcm").write_bytes(b"\0" * 128 + b"DICMgarbage")
    out = tmp_path / "out"
    result = run_btk("run", studies, "-o", out, "--candidates", candidates, "--method", "mav")
    assert result.code == 1, result.output
    rows = {row["study"].split("-")[0]: row for row in csv.DictReader((out / "manifest.csv").open())}
    assert set(rows) == {"ok", "study", "unreadable"}
    assert rows["ok"]["status"] == "ok" and (out / "ok-case" / "report" / "report.html").is_file()
    assert "no flair series" in rows["study"]["reason"] and "'MRHR T1 AX POST GAD'" in rows["study"]["reason"]
    assert "[redacted]" in rows["unreadable"]["reason"]  # the file is named, its identifying part is not
    assert_no_identifiers(IDENTIFIERS, out, result.stdout, result.stderr)


@pytest.mark.slow  # btk run starts worker processes: tens of seconds on a busy machine
def test_study_names_are_pseudonyms_stable_within_one_output_folder(identified: Path, tmp_path: Path):
    study = copy_of(identified, tmp_path / "dicom", "S010", "S002")

    def names(out: Path) -> list[str]:
        result = run_btk("run", study, "-o", out, "--candidates", EXAMPLE_CANDIDATES)
        assert result.code == 1, result.output  # no T1c, no FLAIR
        assert_no_identifiers(IDENTIFIERS, out, result.output)
        return [row["study"] for row in csv.DictReader((out / "manifest.csv").open())]

    first = names(tmp_path / "out")
    assert len(first) == 1 and first[0].startswith("study-")
    assert names(tmp_path / "out") == first
    assert names(tmp_path / "other") != first


@pytest.mark.slow
def test_convert_force_replaces_an_earlier_conversion(identified: Path, tmp_path: Path):
    """The second study has no T1 of its own: the first study's T1 must not be chosen for it."""
    first = copy_of(identified, tmp_path / "first", "S010", "S013")
    second = write_identified_study(tmp_path / "second", "1.2.826.0.1.3680043.8.498.2", ("t2w",))
    out = tmp_path / "nifti"
    assert run_btk("convert", first, "-o", out).code == 0
    refused = run_btk("convert", second, "-o", out)
    assert_user_error(refused, out)
    assert "--force" in refused.output
    forced = run_btk("convert", second, "-o", out, "--force")
    assert forced.code == 0, forced.output
    assert sorted(p.name for p in out.glob("*.nii.gz")) == ["series2.nii.gz"]
    assert "series10" not in forced.output and "series13" not in forced.output
    assert_no_identifiers(IDENTIFIERS, out, forced.output)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


@pytest.mark.parametrize("naming", [("-o", "PID7734219"), ("--case-id", "Testpatient-01")], ids=["folder", "case-id"])
@pytest.mark.slow
def test_preprocess_refuses_a_case_identifier_that_identifies_the_patient(identified: Path, tmp_path: Path, naming):
    option, value = naming
    out = tmp_path / "out" / (value if option == "-o" else "case")
    args = ["--case-id", value] if option == "--case-id" else []
    result = run_btk("preprocess", identified, "-o", out, *args, "--fast", "--device", "cpu")
    assert_user_error(result)
    assert "holds a patient identifier" in error_line(result.output) and "case-001" in error_line(result.output)
    assert_no_leftovers(tmp_path / "out")
    assert_no_identifiers(IDENTIFIERS, result.output)


def drop_middle_slice(folder: Path) -> str:
    (folder / "IM0013").unlink()
    return "1 slice(s) missing"


def stretch_spacing(folder: Path) -> str:
    for path in sorted(folder.iterdir())[13:]:
        dataset = pydicom.dcmread(path)
        dataset.ImagePositionPatient = [float(v) for v in dataset.ImagePositionPatient[:2]] + [
            float(dataset.ImagePositionPatient[2]) + 1.5
        ]
        dataset.save_as(path, enforce_file_format=True)
    return "slices unequally spaced"


@pytest.mark.parametrize("damage", [drop_middle_slice, stretch_spacing], ids=["missing-slice", "unequal-spacing"])
@pytest.mark.slow
def test_an_incomplete_series_is_reported_and_not_used_by_convert(identified: Path, tmp_path: Path, damage):
    study = copy_of(identified, tmp_path / "dicom", "S010", "S002")
    expected = damage(study / "S010")
    out = tmp_path / "nifti"
    result = run_btk("convert", study, "-o", out)
    assert result.code == 0, result.output
    text = " ".join(result.output.split())
    assert "series 10 'T1 AX SE' looks like T1 but is not used" in text and expected in text
    assert "series10.nii.gz │ t1n" not in result.output and "│ t1n" not in result.output  # not chosen
    assert_no_identifiers(IDENTIFIERS, out, result.output)


@pytest.mark.parametrize("damage", [drop_middle_slice, stretch_spacing], ids=["missing-slice", "unequal-spacing"])
@pytest.mark.slow
def test_an_incomplete_series_is_one_clear_error_of_preprocess(identified: Path, tmp_path: Path, damage):
    study = copy_of(identified, tmp_path / "dicom")
    expected = damage(study / "S010")
    out = tmp_path / "out" / "case"
    before = files_under(tmp_path / "out")
    result = run_btk("preprocess", study, "-o", out, "--fast", "--device", "cpu")
    assert_user_error(result, study)
    assert "missing T1" in error_line(result.output) and expected in error_line(result.output)
    assert_no_leftovers(tmp_path / "out", before)
    assert_no_identifiers(IDENTIFIERS, result.output)


@pytest.mark.parametrize("damage", [drop_middle_slice, stretch_spacing], ids=["missing-slice", "unequal-spacing"])
@pytest.mark.slow
def test_an_incomplete_series_fails_its_study_in_run_with_the_reason(identified: Path, tmp_path: Path, damage):
    study = copy_of(identified, tmp_path / "dicom")
    expected = damage(study / "S010")
    out = tmp_path / "out"
    result = run_btk("run", study, "-o", out, "--candidates", EXAMPLE_CANDIDATES)
    assert result.code == 1, result.output
    (row,) = csv.DictReader((out / "manifest.csv").open())
    assert row["status"] == "failed" and "no t1 series" in row["reason"] and expected in row["reason"]
    assert_no_identifiers(IDENTIFIERS, out, result.output)


def test_identifiers_in_a_log_record_and_a_written_file_are_redacted(tmp_path: Path):
    """The guard behind the console, the logger and btk.io (in this process)."""
    import logging

    from btk.console import logger
    from btk.io import atomic_path, save_json

    guard.register(["Unittestpatientname"])
    try:
        save_json({"note": "for Unittestpatientname"}, tmp_path / "a.json")
        with atomic_path(tmp_path / "b.csv") as temporary:
            temporary.write_text("study,reason\nx,Unittestpatientname here\n")
        records = []
        handler = logging.Handler()
        handler.emit = records.append
        logger.addHandler(handler)
        logger.warning("seen %s", "Unittestpatientname")
        logger.removeHandler(handler)
        assert json.loads((tmp_path / "a.json").read_text()) == {"note": "for [redacted]"}
        assert "[redacted] here" in (tmp_path / "b.csv").read_text()
        assert [r.getMessage() for r in records] == ["seen [redacted]"]
    finally:
        guard.clear()
