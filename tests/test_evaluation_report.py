"""``btk evaluate --report``: the cohort statistics, the weak cases and why, in CSVs and a page that renders."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from btk.cli import main
from btk.evaluation.cohort import Statistics
from tests.support.data import DATA
from tests.support.evaluation_cases import pairs
from tests.support.pipeline import png_size, render_in_chromium

IMAGES = DATA / "pipeline" / "BraTS-GLI-00001-000"
CASES = (
    "fg6692-scan-vs-isen",
    "fg6692-sanet-vs-scan",
    "du7294-hnf-vs-isen",
    "du7294-yixin-vs-hnf",
    "two-tumours",
    "reference-without-et",
)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """Six cases of real candidates (one whose reference has no ET), each with the images of a real exam."""
    root = tmp_path_factory.mktemp("cohort")
    affine = nib.load(str(DATA / "fusion" / "TCGA-FG-6692" / "candidates" / "isen-20.nii.gz")).affine
    built = pairs()
    for case in CASES:
        for role, array in zip(("pred", "ref"), built[case]):
            (root / role).mkdir(exist_ok=True)
            nib.save(nib.Nifti1Image(array, affine), str(root / role / f"{case}.nii.gz"))
        (root / "images" / case).mkdir(parents=True)
        for image in IMAGES.glob("*.nii.gz"):
            shutil.copyfile(image, root / "images" / case / f"{case}-{image.name.rsplit('-', 1)[1]}")
    return root


def _read(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open()))


@pytest.mark.slow
def test_report_of_a_cohort(cohort, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    arguments = ["evaluate", str(cohort / "pred"), str(cohort / "ref"), "-o", str(out), "--report"]
    assert main([*arguments, "--images", str(cohort / "images")]) == 0, capsys.readouterr().err
    folder = tmp_path / "scores_report"
    assert sorted(p.name for p in folder.iterdir()) == [
        "cases.csv",
        "dice_vs_volume.png",
        "evaluation_report.json",
        "features.csv",
        "index.html",
        "metrics.png",
        "statistics.csv",
    ]
    scores = _read(out)
    statistics = {(r["region"], r["metric"]): r for r in _read(folder / "statistics.csv")}
    for region in ("WT", "TC", "ET"):
        dice = [float(r["dice"]) for r in scores if r["region"] == region]
        expected = Statistics.of(dice)
        row = statistics[(region, "dice")]
        assert int(row["n"]) == 6 and float(row["mean"]) == pytest.approx(expected.mean, abs=1e-5)
        assert float(row["std"]) == pytest.approx(np.std(dice, ddof=1), abs=1e-5)
        assert float(row["q1"]) == pytest.approx(np.percentile(dice, 25), abs=1e-5)
    cases = {(r["case"], r["region"]): r for r in _read(folder / "cases.csv")}
    assert float(cases[("reference-without-et", "ET")]["reference_ml"]) == 0
    assert int(cases[("two-tumours", "WT")]["reference_lesions"]) >= 2
    for row in scores:
        assert float(cases[(row["case"], row["region"])]["reference_ml"]) == pytest.approx(
            float(row["volume_ref_ml"]), abs=1e-5
        )
    features = _read(folder / "features.csv")
    assert len(features) == 6 * 3 * 4  # cases x regions x modalities
    empty = [f for f in features if f["case"] == "reference-without-et" and f["region"] == "ET"]
    assert all(f["voxels"] == "0" and f["mean"] == "" for f in empty)
    wt = next(f for f in features if f["case"] == "two-tumours" and f["region"] == "WT" and f["modality"] == "flair")
    assert float(wt["volume_ml"]) == pytest.approx(float(cases[("two-tumours", "WT")]["reference_ml"]), abs=1e-5)
    assert 0 < float(wt["sphericity"]) < 1 and float(wt["std"]) > 0
    page = (folder / "index.html").read_text()
    assert "References without a region" in page and "reference-without-et" in page
    worst_dice = min(scores, key=lambda r: (float(r["dice"]), r["case"]) if r["region"] == "ET" else (2, ""))
    assert page.index(worst_dice["case"], page.index("<h2>Worst cases</h2>")) > 0
    images, ink = render_in_chromium(folder / "index.html", tmp_path)
    assert [src for src, _, _ in images] == ["metrics.png", "dice_vs_volume.png"]
    for src, complete, width in images:
        assert complete and width == png_size(folder / src)[0], f"{src} did not load"
    assert ink > 0.02
    # the same again is refused, --force replaces btk's own report
    assert main(arguments) == 2 and "the output exists" in " ".join(capsys.readouterr().err.split())
    assert main([*arguments, "--force", "--scheme", "brats2023"]) == 0
    assert not (folder / "features.csv").exists()
    assert {r["metric"] for r in _read(folder / "statistics.csv")} >= {"lesionwise_dice", "num_fp"}


@pytest.mark.slow
def test_report_of_the_brats2025_scheme_has_its_regions_and_leaves_undefined_values_out(cohort, tmp_path, capsys):
    out = tmp_path / "scores2025.csv"
    arguments = ["evaluate", str(cohort / "pred"), str(cohort / "ref"), "-o", str(out), "--scheme", "brats2025"]
    assert main([*arguments, "--report", "--images", str(cohort / "images")]) == 0, capsys.readouterr().err
    folder = tmp_path / "scores2025_report"
    scores = _read(out)
    regions = ["wt", "tc", "et", "netc", "snfh", "rc"]
    statistics = {(r["region"], r["metric"]): r for r in _read(folder / "statistics.csv")}
    rc = statistics[("rc", "lesionwise_dsc_mean")]  # no candidate has a cavity: NaN in every case
    assert int(rc["n"]) == 0 and int(rc["undefined"]) == 6 and rc["mean"] == "nan"
    et = [float(r["global_dsc"]) for r in scores if r["region"] == "et"]
    finite = [v for v in et if np.isfinite(v)]
    assert int(statistics[("et", "global_dsc")]["n"]) == len(finite)
    assert float(statistics[("et", "global_dsc")]["mean"]) == pytest.approx(np.mean(finite), abs=1e-5)
    cases = _read(folder / "cases.csv")
    assert list(dict.fromkeys(r["region"] for r in cases)) == regions
    assert all(float(r["reference_ml"]) == 0 for r in cases if r["region"] == "rc")
    assert {f["region"] for f in _read(folder / "features.csv")} == set(regions)
    images, _ = render_in_chromium(folder / "index.html", tmp_path)
    assert all(complete for _, complete, _ in images)


def test_report_options_are_checked_before_any_work(cohort, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    base = ["evaluate", str(cohort / "pred"), str(cohort / "ref"), "-o", str(out)]
    assert main([*base, "--images", str(cohort / "images")]) == 2
    assert "--images gives the features of the cohort report" in capsys.readouterr().err
    assert main([*base, "--report", "--images", str(tmp_path / "none")]) == 2
    assert "the images folder does not exist" in " ".join(capsys.readouterr().err.split())
    (tmp_path / "some-images" / CASES[0]).mkdir(parents=True)
    assert main([*base, "--report", "--images", str(tmp_path / "some-images")]) == 2  # the other cases' folders
    err = " ".join(capsys.readouterr().err.split())
    assert "no images folder for case" in err and "Traceback" not in err
    assert (tmp_path / "scores.csv").exists() and not (tmp_path / "scores_report").exists()  # the scores are kept
    out.unlink()
    (tmp_path / "scores_report").mkdir()
    (tmp_path / "scores_report" / "mine.txt").write_text("a user's file")
    assert main([*base, "--report", "--force"]) == 2  # never replaces a folder btk did not write
    assert (tmp_path / "scores_report" / "mine.txt").exists() and not out.exists()
