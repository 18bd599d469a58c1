"""Hostile and careless input to ``btk alarms`` (agreement reports) and ``btk evaluate`` (which file is blamed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from btk.fusion.agreement import AgreementReport, CandidateAgreement
from btk.labels import REGIONS
from tests.support.hostile import ROOT, assert_no_leftovers, assert_user_error, files_under, run_btk

REAL = ROOT / "tests" / "data" / "fusion" / "TCGA-FG-6692" / "candidates"


@pytest.fixture
def cohort(tmp_path: Path) -> Path:
    """``tmp_path/cohort`` with the agreement reports of four cases, as ``btk fuse`` writes them."""
    folder = tmp_path / "cohort"
    for case in ("case-a", "case-b", "case-c", "case-d"):
        candidates = [
            CandidateAgreement(
                name, {r: 0.2 if (case, name) == ("case-d", "x") else 0.9 for r in REGIONS}, {r: 2.0 for r in REGIONS}
            )
            for name in ("x", "y")
        ]
        (folder / case).mkdir(parents=True)
        AgreementReport(case, "brats2021", candidates).save(folder / case / f"{case}_agreement.json")
    return folder


def _report(cohort: Path) -> Path:
    return cohort / "case-a" / "case-a_agreement.json"


@pytest.mark.slow
def test_valid_reports_work(tmp_path: Path, cohort: Path):
    """The baseline the hostile cases below depart from."""
    result = run_btk("alarms", cohort, "-o", tmp_path / "alarms.json")
    assert result.code == 0, result.output
    assert json.loads((tmp_path / "alarms.json").read_text())["alarms_per_case"]["case-d"] == 3


def _breaks(payload: dict, how: str) -> object:
    """The report ``payload`` broken in one way."""
    candidate = payload["candidates"][0]
    if how == "text Dice":
        candidate["dice"]["WT"] = "0.9 or so"
    elif how == "null Dice":
        candidate["dice"]["TC"] = None
    elif how == "boolean Dice":
        candidate["dice"]["ET"] = True
    elif how == "Dice above 1":
        candidate["dice"]["WT"] = 1.5
    elif how == "missing region":
        del candidate["dice"]["ET"]
    elif how == "negative HD95":
        candidate["hd95_mm"]["WT"] = -1
    elif how == "no candidates":
        payload["candidates"] = []
    elif how == "a list":
        return [payload]
    return payload


@pytest.mark.parametrize(
    "how",
    [
        "text Dice",
        "null Dice",
        "boolean Dice",
        "Dice above 1",
        "missing region",
        "negative HD95",
        "no candidates",
        "a list",
    ],
)
@pytest.mark.slow
def test_reports_with_wrong_values(tmp_path: Path, cohort: Path, how: str):
    report = _report(cohort)
    report.write_text(json.dumps(_breaks(json.loads(report.read_text()), how)))
    result = run_btk("alarms", cohort, "-o", tmp_path / "out" / "alarms.json")
    assert_user_error(result, report, "not an agreement report")
    assert_no_leftovers(tmp_path / "out")


@pytest.mark.slow
def test_nan_written_as_json_constant_is_refused(tmp_path: Path, cohort: Path):
    report = _report(cohort)
    report.write_text(report.read_text().replace("0.9", "NaN", 1))
    result = run_btk("alarms", cohort, "-o", tmp_path / "out" / "alarms.json")
    assert_user_error(result, report, "not an agreement report")


@pytest.mark.parametrize(
    "kind", ["image", "binary file", "empty file", "sidecar", "folder without reports", "missing file"]
)
@pytest.mark.slow
def test_files_that_are_not_reports(tmp_path: Path, cohort: Path, kind: str):
    """Images, binary files, the fusion's other sidecar, and folders: one message naming the file."""
    if kind == "image":
        bad = REAL / "isen-20.nii.gz"
    elif kind == "binary file":
        bad = tmp_path / "random_agreement.json"
        bad.write_bytes(bytes(range(256)) * 8)
    elif kind == "empty file":
        bad = tmp_path / "empty_agreement.json"
        bad.write_bytes(b"")
    elif kind == "sidecar":
        bad = cohort / "case-a" / "case-a.json"
        bad.write_text(json.dumps({"btk_version": "1", "method": "mav", "candidates": [{"name": "x"}]}))
    elif kind == "folder without reports":
        bad = tmp_path / "empty"
        bad.mkdir()
    else:
        bad = tmp_path / "missing_agreement.json"
    result = run_btk("alarms", cohort, bad, "-o", tmp_path / "out" / "alarms.json")
    assert_user_error(result, bad)
    assert_no_leftovers(tmp_path / "out")
    if kind == "sidecar":
        assert "case-a_agreement.json" in result.output  # says which file was meant


def test_a_report_given_twice_is_reported(tmp_path: Path, cohort: Path):
    result = run_btk("alarms", cohort, _report(cohort), "-o", tmp_path / "out" / "alarms.json")
    assert_user_error(result, _report(cohort), "twice")
    assert_no_leftovers(tmp_path / "out")


def test_two_reports_of_one_case_are_named(tmp_path: Path, cohort: Path):
    copy = tmp_path / "elsewhere" / "copy_agreement.json"
    copy.parent.mkdir()
    shutil.copyfile(_report(cohort), copy)
    result = run_btk("alarms", cohort, copy, "-o", tmp_path / "out" / "alarms.json")
    assert_user_error(result, _report(cohort), copy, "case-a")
    assert_no_leftovers(tmp_path / "out")


def test_the_output_may_not_replace_a_report(tmp_path: Path, cohort: Path):
    before = _report(cohort).read_bytes()
    result = run_btk("alarms", cohort, "-o", _report(cohort), "--force")
    assert_user_error(result, _report(cohort))
    assert _report(cohort).read_bytes() == before


# --- btk evaluate blames the right file ------------------------------------------------------------------


@pytest.fixture
def segmentations(tmp_path: Path) -> Path:
    """``tmp_path/pred`` and ``tmp_path/ref``, each with case ``c1`` (real candidates)."""
    for name, source in (("pred", "isen-20"), ("ref", "scan-20")):
        (tmp_path / name).mkdir()
        shutil.copyfile(REAL / f"{source}.nii.gz", tmp_path / name / "c1.nii.gz")
    return tmp_path


@pytest.mark.parametrize("missing", ["reference", "prediction"])
@pytest.mark.parametrize("kind", ["folder", "file"])
@pytest.mark.slow
def test_evaluate_names_the_missing_argument(segmentations: Path, missing: str, kind: str):
    pred, ref = segmentations / "pred", segmentations / "ref"
    if kind == "file":
        pred, ref = pred / "c1.nii.gz", ref / "c1.nii.gz"
    nowhere = segmentations / "nonexistent"
    arguments = (pred, nowhere) if missing == "reference" else (nowhere, ref)
    listing = files_under(segmentations)
    result = run_btk("evaluate", *arguments, "-o", segmentations / "scores.csv")
    assert_user_error(result, nowhere, "not found")
    present = pred if missing == "reference" else ref
    assert f"{present}:" not in result.output  # the valid argument is not blamed
    assert_no_leftovers(segmentations, listing)


@pytest.mark.slow
def test_evaluate_output_may_not_replace_an_input(segmentations: Path):
    pred, ref = segmentations / "pred" / "c1.nii.gz", segmentations / "ref" / "c1.nii.gz"
    before = pred.read_bytes()
    result = run_btk("evaluate", pred, ref, "-o", pred, "--force")
    assert_user_error(result, pred)
    assert pred.read_bytes() == before


@pytest.mark.slow
def test_evaluate_a_probability_map_is_named(segmentations: Path):
    probabilities = segmentations / "pred" / "c1.nii.gz"
    image = nib.load(str(segmentations / "ref" / "c1.nii.gz"))
    nib.save(nib.Nifti1Image(np.full(image.shape, 0.5, np.float32), image.affine), str(probabilities))
    result = run_btk("evaluate", probabilities, segmentations / "ref" / "c1.nii.gz", "-o", segmentations / "s.csv")
    assert_user_error(result, probabilities, "probability map")
    assert not (segmentations / "s.csv").exists()
