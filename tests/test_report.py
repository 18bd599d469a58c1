"""Reports: colour tables, figures through the tumour centre, volumes, pages rendered from typed data, and
the HTML in a real Chromium."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from btk.labels import get_convention
from btk.pipeline import Pipeline
from btk.report import region_volumes_ml, tumour_centre, write_itksnap_labels, write_slicer_colour_table
from btk.report.cohort import write_cohort_summary
from btk.report.colours import TISSUE_COLOURS
from btk.report.data import (
    AgreementRecord,
    CandidateAgreementRecord,
    CandidateRecord,
    CohortRow,
    ExamReportData,
    FusionRecord,
    RaisedAlarm,
    ReportFiles,
    StageRecord,
)
from btk.report.exam import render_exam_report
from tests.support.pipeline import brats_batch, png_size, render_in_chromium

#: Written into a copy of a page: after loading, record every image's source and decoded width in the DOM.


@pytest.fixture(scope="module")
def batch_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run over three studies (BraTS-space exam, real candidates): reports with cohort alarms."""
    root = tmp_path_factory.mktemp("report")
    studies, candidates = brats_batch(root, ["r1", "r2", "r3"], [5, 3, 3])
    batch = Pipeline(root / "out", candidates=candidates, method="mav", workers=2).run(studies)
    assert batch.ok, [r.reason for r in batch.failed]
    return root / "out"


def test_colour_tables_for_itksnap_and_slicer(tmp_path: Path):
    for name, et in (("brats2021", 4), ("brats2023", 3)):
        convention = get_convention(name)
        itksnap = write_itksnap_labels(convention, tmp_path / f"{name}.txt").read_text().splitlines()
        rows = [line.split(None, 7) for line in itksnap if not line.startswith("#")]
        assert [int(r[0]) for r in rows] == [0, 1, 2, et]
        assert rows[3][1:4] == [str(c) for c in TISSUE_COLOURS["ET"][0]] and rows[3][7] == '"enhancing tumour (ET)"'
        assert all(len(r) == 8 for r in rows)  # IDX R G B A VIS MSH "LABEL"
        slicer = write_slicer_colour_table(convention, tmp_path / f"{name}.ctbl").read_text().splitlines()
        entries = [line.split() for line in slicer if not line.startswith("#")]
        assert [(int(e[0]), e[1]) for e in entries] == [(0, "background"), (1, "NCR"), (2, "ED"), (et, "ET")]
        assert all(len(e) == 6 for e in entries)


def test_volumes_and_centre_of_a_known_lesion():
    segmentation = np.zeros((40, 50, 60), np.uint8)
    segmentation[10:20, 20:30, 30:40] = 2  # 1000 voxels of oedema
    segmentation[14:16, 24:26, 34:36] = 3  # 8 voxels of enhancing tumour inside
    assert region_volumes_ml(segmentation, (1.0, 1.0, 2.0), "brats2023") == {"WT": 2.0, "TC": 0.02, "ET": 0.02}
    assert tumour_centre(segmentation) == (14, 24, 34)  # centre of mass 14.5, 24.5, 34.5, rounded to even
    segmentation[20, 30, 40] = 1  # one more voxel moves it past the half
    assert tumour_centre(segmentation) == (15, 25, 35)


@pytest.mark.slow
def test_figures_show_the_labels_in_three_planes(batch_output: Path):
    from PIL import Image

    figure = batch_output / "r1" / "report" / "t1c.png"
    width, height = png_size(figure)
    assert width > 900 and height > 300
    pixels = np.asarray(Image.open(figure).convert("RGB")).astype(int)
    panels = np.array_split(pixels[int(height * 0.15) :], 3, axis=1)
    for panel in panels:  # oedema (green) overlaid in every plane through the tumour centre
        greenish = (panel[..., 1] > panel[..., 0] + 40) & (panel[..., 1] > panel[..., 2] + 40)
        assert greenish.sum() > 50


def test_exam_report_content_and_cohort_summary(batch_output: Path):
    data = json.loads((batch_output / "r1" / "report" / "report.json").read_text())
    fused = nib.load(batch_output / "r1" / "fuse" / "r1_fused.nii.gz")
    assert data["volumes_ml"] == region_volumes_ml(np.asarray(fused.dataobj), fused.header.get_zooms(), "brats2023")
    assert data["candidates_source"].endswith("candidates/r1")
    assert {c["origin"] for c in data["candidates"]} == {"imported"}
    html = (batch_output / "r1" / "report" / "report.html").read_text()
    assert "brought in from" in html and "Ensemble alarms over a cohort of 3 cases" in html
    for citation in ("Kofler F", "Isensee", "Majority voting", "Menze BH"):
        assert citation in html
    assert 'href="../fuse/r1_fused.nii.gz"' in html and (batch_output / "r1" / "fuse" / "r1_fused.nii.gz").is_file()
    summary = (batch_output / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("study,status,failed_stage,reason") and len(summary) == 4


def exam_data(name: str = "s1") -> ExamReportData:
    """The report data of a fused study with two candidates, one of them named like an HTML tag."""
    regions = {"WT": 0.9, "TC": 0.8, "ET": 0.7}
    return ExamReportData(
        study=name,
        kind="brats",
        source="/data/<b>studies</b>/s1",
        labels="brats2023",
        volumes_ml={"WT": 30.0, "TC": 9.0, "ET": 6.0},
        fusion=FusionRecord("simple", "labels", "default"),
        candidates=(
            CandidateRecord("<img src=x>", "imported", "/c/a.nii.gz", "ab" * 32, "brats2023 -> brats2023"),
            CandidateRecord("isen-20", "imported", "/c/isen-20.nii.gz", "cd" * 32, "brats2021 -> brats2023"),
        ),
        files=ReportFiles(f"../fuse/{name}_fused.nii.gz"),
        candidates_source="/c",
        agreement=AgreementRecord(
            name,
            "brats2023",
            (
                CandidateAgreementRecord("<img src=x>", regions, regions),
                CandidateAgreementRecord("isen-20", regions, regions),
            ),
        ),
        stages={"segment": StageRecord(1.5), "fuse": StageRecord(0.5)},
        citations=("Kofler F et al.",),
    )


def test_the_exam_page_renders_the_typed_data_it_is_handed():
    data = exam_data()
    page = render_exam_report(data, [RaisedAlarm("isen-20", "ET")], cohort_size=4)
    assert "<img src=x>" not in page and "&lt;img src=x&gt;" in page and "&lt;b&gt;studies" in page
    assert 'href="../fuse/s1_fused.nii.gz"' in page and "Ensemble alarms over a cohort of 4 cases: 1 raised" in page
    assert page.count('<tr class="alarm">') == 1 and "Fusion: <b>simple</b> (labels)" in page
    assert "they need a cohort of at least 3 cases (this run had 2)" in render_exam_report(data, None, 2)


def test_the_exam_data_survives_report_json_and_reads_btk_0_2_files(tmp_path: Path):
    data = exam_data()
    assert ExamReportData.load(data.save(tmp_path / "report.json")) == data
    old = json.loads(json.dumps(data.to_dict()))  # the layout btk 0.2.0 wrote
    old["files"] = {
        "fuse": {"fused": "../fuse/s1_fused.nii.gz", "agreement": "../fuse/a.json"},
        "native": {"native": "../native/n.nii.gz"},
    }
    old["stages"] = {"preprocess": {"seconds": 3, "source": "/raw/s1"}, "evaluate": {"seconds": 1, "reference": "r"}}
    old["fusion"]["seconds"] = 0.5
    loaded = ExamReportData.from_dict(old)
    assert loaded.files == ReportFiles("../fuse/s1_fused.nii.gz", "../native/n.nii.gz")
    assert loaded.stages == {"preprocess": StageRecord(3.0, "/raw/s1"), "evaluate": StageRecord(1.0, "r")}
    with pytest.raises(ValueError, match="not the data of an exam report"):
        ExamReportData.from_dict({"study": "s1"})


def test_the_cohort_summary_is_written_from_its_rows(tmp_path: Path):
    rows = [
        CohortRow("s1", "ok", 12.34, "brats", report=exam_data(), alarms=2),
        CohortRow("s2", "failed", 1.0, "dicom", failed_stage="segment", reason="no <candidates>"),
    ]
    written = write_cohort_summary(tmp_path, rows, alarms_computed=True)
    lines = written["csv"].read_text().splitlines()
    assert lines[1] == "s1,ok,,,12.3,brats,2,simple,30.0,9.0,6.0,2,s1/report/report.html"
    assert lines[2] == "s2,failed,segment,no <candidates>,1.0,dicom,,,,,,,"
    html = written["html"].read_text()
    assert "segment: no &lt;candidates&gt;" in html and "Ensemble alarms computed over the cohort" in html


@pytest.mark.slow
def test_reports_render_with_their_images_in_headless_chromium(batch_output: Path, tmp_path: Path):
    page = batch_output / "r2" / "report" / "report.html"
    images, ink = render_in_chromium(page, tmp_path)
    assert [src for src, _, _ in images] == ["t1c.png", "flair.png"]
    for src, complete, width in images:
        assert complete and width == png_size(page.parent / src)[0], f"{src} did not load"
    assert ink > 0.2  # the figures are on screen, not a blank page
    summary, ink = render_in_chromium(batch_output / "summary.html", tmp_path)
    assert summary == [] and ink > 0.01
    shutil.rmtree(tmp_path / "profile-dom", ignore_errors=True)
