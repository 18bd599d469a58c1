"""The clinical measures in the outputs: ``btk clinical``, the PDF, and the pipeline's exam report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from btk.clinical import measure_exam
from btk.io import load_label_map
from btk.pipeline import Pipeline
from btk.report.clinical import write_clinical_page
from btk.report.pdf import print_pdf
from tests.support.pipeline import DATA, brats_batch, btk, markers

REAL_EXAM = DATA / "fusion" / "TCGA-FG-6692" / "brats_toolkit_reference" / "mav.nii.gz"


@pytest.mark.slow
def test_btk_clinical_writes_the_measures_and_refuses_to_overwrite(tmp_path: Path):
    out = tmp_path / "clinical"
    done = btk("clinical", REAL_EXAM, "-o", out, "--no-pdf")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "research use" in (done.stdout + done.stderr).lower()
    assert {p.name for p in out.iterdir()} == {"clinical.json", "clinical.csv", "clinical.html"}
    page = (out / "clinical.html").read_text(encoding="utf-8")
    assert "not for diagnosis" in page and "RANO bidimensional product" in page and "FSL licence" in page
    findings = json.loads((out / "clinical.json").read_text(encoding="utf-8"))
    assert findings["labels"] == "brats2021" and findings["on_brats_grid"]
    again = btk("clinical", REAL_EXAM, "-o", out, "--no-pdf")
    assert again.returncode == 2 and "--force" in again.stdout + again.stderr
    assert btk("clinical", REAL_EXAM, "-o", out, "--no-pdf", "--force").returncode == 0


@pytest.mark.slow
def test_btk_clinical_bad_input_is_one_message(tmp_path: Path):
    broken = tmp_path / "broken.nii.gz"
    broken.write_text("not an image")
    done = btk("clinical", broken, "-o", tmp_path / "out", "--no-pdf")
    shown = done.stdout + done.stderr
    assert done.returncode == 2 and "broken.nii.gz" in shown and "Traceback" not in shown
    assert not (tmp_path / "out" / "clinical.json").exists()
    wrong = btk("clinical", REAL_EXAM, "-o", tmp_path / "out2", "--labels", "brats2023", "--no-pdf")
    assert wrong.returncode == 2 and "brats2023" in wrong.stdout + wrong.stderr


@pytest.mark.slow
def test_the_pdf_is_printed_by_chromium_or_skipped_with_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><html><body><p>For research use only</p></body></html>", encoding="utf-8")
    assert print_pdf(page, tmp_path / "page.pdf") is None
    assert (tmp_path / "page.pdf").read_bytes().startswith(b"%PDF")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    note = print_pdf(page, tmp_path / "other.pdf")
    assert note and "Chromium" in note and not (tmp_path / "other.pdf").exists()
    image, segmentation = load_label_map(REAL_EXAM)
    clinical = measure_exam(segmentation, image.affine, "brats2021").to_dict()
    written = write_clinical_page(clinical, "measures", tmp_path / "clinical.html", pdf=True)
    assert "No PDF: no Chromium was found" in written.read_text(encoding="utf-8")
    assert not (tmp_path / "clinical.pdf").exists()


@pytest.mark.slow
def test_the_exam_report_holds_the_clinical_measures_and_its_pdf_and_btk_compare_reads_them(tmp_path: Path):
    studies, candidates = brats_batch(tmp_path, ["first", "second"], [2, 3])
    out = tmp_path / "out"
    assert Pipeline(out, candidates=candidates, method="mav", workers=1).run(studies).ok
    report = out / "first" / "report"
    assert {"clinical.json", "clinical.csv", "report.pdf", "report.html"} <= {p.name for p in report.iterdir()}
    assert (report / "report.pdf").read_bytes().startswith(b"%PDF")
    page = (report / "report.html").read_text(encoding="utf-8")
    assert "Clinical measures" in page and "not for diagnosis" in page and 'href="report.pdf"' in page
    data = json.loads((report / "report.json").read_text(encoding="utf-8"))
    clinical = json.loads((report / "clinical.json").read_text(encoding="utf-8"))
    assert data["clinical"]["regions"] == clinical["regions"]
    assert [r["region"] for r in clinical["regions"]] == ["WT", "TC", "ET"]
    assert {r["region"]: round(r["volume_ml"], 2) for r in clinical["regions"]} == data["volumes_ml"]
    assert any("Wen PY" in citation for citation in data["citations"])
    assert "clinical_json" in markers(out / "first")["report"]["outputs"]

    # two exams (the two real TCIA cases stand in for a baseline and a follow-up on the same grid)
    done = btk("compare", out / "first", out / "second", "-o", tmp_path / "follow-up")
    assert done.returncode == 0, done.stdout + done.stderr
    follow_up = json.loads((tmp_path / "follow-up" / "compare.json").read_text(encoding="utf-8"))
    (only,) = follow_up["follow_ups"]
    second = json.loads((out / "second" / "report" / "clinical.json").read_text(encoding="utf-8"))
    change = {c["region"]: c for c in only["regions"]}["WT"]
    assert change["change_ml"] == pytest.approx(second["regions"][0]["volume_ml"] - clinical["regions"][0]["volume_ml"])
    assert only["response"] in {"CR", "PR", "SD", "PD"} and "Ellingson" in follow_up["source"]
    assert {"compare.html", "compare.csv", "volumes.png", "slices.png"} <= {
        p.name for p in (tmp_path / "follow-up").iterdir()
    }
    refused = btk("compare", out / "first", studies, "-o", tmp_path / "other")
    assert refused.returncode == 2 and "not a btk study folder" in refused.stdout + refused.stderr
