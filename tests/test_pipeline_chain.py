"""The whole chain once, on the real TCIA exam: DICOM -> conversion -> preprocessing (HD-BET, fast, CPU)
-> imported candidates -> fusion -> native space -> DICOM SEG -> report; then the preprocessed exam as an input.

The DICOM study carries patient identifiers in every identifying and free-text attribute: none may reach any
output, file name or console line of the whole chain, except the DICOM SEG written back for the PACS, which
copies those of its source study.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from btk.io import load_label_map
from btk.labels import REGIONS, get_convention
from btk.pipeline.stages import NO_DICOM_SOURCE
from btk.preprocess import PreprocessedExam
from tests.support.deid import IDENTIFIERS, write_identified_study
from tests.support.dicom_seg import SERIES_AND_IMAGE_TEXT, dciodvfy, identifying_elements, read_back
from tests.support.hostile import assert_no_identifiers
from tests.support.pipeline import EXAMPLE_CANDIDATES, btk, markers

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """The TCIA exam written as a real DICOM study (nested, a stray non-DICOM file, identifiers everywhere), run
    through ``btk run`` with the shipped candidates; returns the root, the study's output folder and the console."""
    root = tmp_path_factory.mktemp("chain")
    dicom = write_identified_study(root / "dicom" / "study")
    (dicom / "README.txt").write_text("exported by a PACS\n")
    result = btk(
        "run",
        root / "dicom",
        "-o",
        root / "out",
        "--candidates",
        EXAMPLE_CANDIDATES,
        "--fast",
        "--device",
        "cpu",
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr
    study = next(p for p in (root / "out").iterdir() if p.is_dir())
    return root, study, result.stdout + result.stderr


def test_no_patient_identifier_reaches_any_output_or_console_line(chain: tuple[Path, Path, str]):
    root, study, console = chain
    assert study.name.startswith("study-")  # a pseudonym, never the patient ID or the date
    seg = study / "dicom" / "seg.dcm"
    files = [path for path in (root / "out").rglob("*") if path.is_file() and path != seg]
    folders = " ".join(path.name for path in (root / "out").rglob("*") if path.is_dir())
    assert_no_identifiers(IDENTIFIERS, *files, folders, console)
    assert not set(identifying_elements(pydicom.dcmread(seg), IDENTIFIERS)) & SERIES_AND_IMAGE_TEXT


def test_the_dicom_seg_of_the_t1_series_gives_the_native_consensus(chain: tuple[Path, Path, str]):
    root, study, _ = chain
    seg, native = study / "dicom" / "seg.dcm", study / "native" / f"{study.name}_fused_native.nii.gz"
    assert dciodvfy(seg)[0] == []
    assert np.array_equal(read_back(seg, native, "brats2023"), np.asarray(nib.load(str(native)).dataobj))
    t1 = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted((root / "dicom" / "study" / "S010").iterdir())]
    referenced = pydicom.dcmread(seg).ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == t1[0].SeriesInstanceUID  # the T1 series: the native grid's
    assert len(referenced.ReferencedInstanceSequence) == len(t1)
    report = json.loads((study / "report" / "report.json").read_text())
    assert report["dicom_seg"] == {"file": "../dicom/seg.dcm", "reason": ""}
    assert 'DICOM SEG: <a href="../dicom/seg.dcm">' in (study / "report" / "report.html").read_text()


def test_every_stage_ran_and_left_complete_outputs(chain: tuple[Path, Path, str]):
    _, study, _ = chain
    assert set(markers(study)) == {"convert", "preprocess", "segment", "fuse", "native", "dicom", "report"}
    fused_image, fused = load_label_map(study / "fuse" / f"{study.name}_fused.nii.gz")
    assert fused.shape == (240, 240, 155) and set(np.unique(fused)) == {0, 1, 2, 3}
    native_image, native = load_label_map(study / "native" / f"{study.name}_fused_native.nii.gz")
    t1 = nib.load(PreprocessedExam.load(study / "preprocess").outputs["native/t1n"])
    assert native.shape == t1.shape[:3] and np.allclose(native_image.affine, t1.affine, atol=1e-3)
    convention = get_convention("brats2023")
    for region in REGIONS:  # the same tumour in both spaces: volumes agree within resampling error
        bratsspace = convention.region_mask(fused, region).sum() * np.prod(fused_image.header.get_zooms()[:3])
        nativespace = convention.region_mask(native, region).sum() * np.prod(native_image.header.get_zooms()[:3])
        assert nativespace == pytest.approx(bratsspace, rel=0.15)
    assert (study / "report" / "report.html").is_file()
    clinical = json.loads((study / "report" / "clinical.json").read_text(encoding="utf-8"))
    native_voxel_ml = float(np.prod(native_image.header.get_zooms()[:3])) / 1000
    for entry in clinical["regions"]:  # the report's native volumes are those of the native map
        voxels = int(convention.region_mask(native, entry["region"]).sum())
        assert entry["native_volume_ml"] == pytest.approx(voxels * native_voxel_ml, rel=1e-4)


def test_report_names_the_origin_of_the_candidates_and_cites_the_methods(chain: tuple[Path, Path, str]):
    _, study, _ = chain
    html = (study / "report" / "report.html").read_text()
    assert str(EXAMPLE_CANDIDATES.resolve()) in html and "made elsewhere" in html
    for cited in ("Li X, Morgan PS", "Avants BB", "Isensee F, Schell M", "Rohlfing T", "Langerak TR", "McKinley"):
        assert cited in html
    assert "_fused_native.nii.gz" in html


def test_a_preprocessed_exam_is_an_input_that_skips_preprocessing(chain: tuple[Path, Path, str]):
    root, study, _ = chain
    out = root / "again"
    result = btk("run", study / "preprocess", "-o", out, "--candidates", EXAMPLE_CANDIDATES, "--method", "mav")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    assert rows[0]["kind"] == "preprocessed"
    again = out / rows[0]["study"]
    assert set(markers(again)) == {"segment", "fuse", "native", "report"}
    report = json.loads((again / "report" / "report.json").read_text())
    assert report["dicom_seg"] == {"file": None, "reason": NO_DICOM_SOURCE["preprocessed"]}
