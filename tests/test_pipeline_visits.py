"""``btk run --longitudinal``: one patient's visits, ordered, run, then compared as ``btk compare`` does, resumably.

The visits are the real BraTS exam (already in BraTS space) with the real candidates of two TCIA exams, so that
they differ as a baseline and a follow-up would, and no visit spends minutes in brain extraction.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

import pytest

from btk.errors import InputError
from btk.pipeline import Pipeline
from btk.pipeline.markers import read_marker
from tests.support.pipeline import BRATS_EXAM, brats_batch, btk, png_size


def visit_folders(root: Path, names: list[str]) -> Path:
    """A patient folder with one BraTS-space exam folder per visit name (links to the real exam)."""
    patient = root / "patient"
    for name in names:
        (patient / name).mkdir(parents=True)
        for image in BRATS_EXAM.glob("*.nii.gz"):
            (patient / name / f"{name}-{image.name.rsplit('-', 1)[-1]}").symlink_to(image)
    (root / "candidates").mkdir(exist_ok=True)
    return patient


def planned(root: Path, names: list[str], visits: list[str] | None = None) -> list[tuple[str, int]]:
    patient = visit_folders(root, names)
    pipeline = Pipeline(root / "out", candidates=root / "candidates", longitudinal=True, visits=visits)
    return [(task.name, task.study.visit) for task in pipeline.plan(patient)]


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["visit-10", "visit-2", "visit-1"], ["visit-1", "visit-2", "visit-10"]),  # as numbers, not as text
        (["2021-09-30", "2021-03-04", "2020-12-01"], ["2020-12-01", "2021-03-04", "2021-09-30"]),
        (["t1-scan", "t0-scan"], ["t0-scan", "t1-scan"]),
    ],
)
def test_nifti_visits_are_ordered_by_the_numbers_in_their_names(tmp_path: Path, names, expected):
    assert planned(tmp_path, names) == [(name, number) for number, name in enumerate(expected, start=1)]


def test_visits_gives_the_order_of_names_that_do_not(tmp_path: Path):
    names = ["pre-op", "post-op", "follow-up"]
    assert planned(tmp_path / "a", names, ["pre-op", "post-op", "follow-up"]) == [
        ("pre-op", 1),
        ("post-op", 2),
        ("follow-up", 3),
    ]
    with pytest.raises(InputError, match="cannot tell the order of the visits") as refused:
        planned(tmp_path / "b", names)
    assert "--visits" in str(refused.value.hint)
    with pytest.raises(InputError, match="no visit named pre; post-op named twice; follow-up not named"):
        planned(tmp_path / "c", names, ["pre", "post-op", "post-op", "pre-op"])


def test_names_with_other_words_or_equal_numbers_are_not_ordered(tmp_path: Path):
    for index, names in enumerate((["visit-1", "scan-2"], ["v1", "v01"], ["baseline", "follow-up-1"])):
        with pytest.raises(InputError, match="cannot tell the order"):
            planned(tmp_path / str(index), names)


@pytest.mark.slow
def test_a_patient_folder_with_two_visits_is_run_compared_and_resumed(tmp_path: Path):
    patient, candidates = brats_batch(tmp_path, ["visit-2", "visit-10"], [2, 3])  # text order is the wrong one
    out = tmp_path / "out"
    command = ["run", patient, "-o", out, "--candidates", candidates, "--longitudinal", "--method", "mav", "--no-pdf"]
    first = btk(*command)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Follow-up comparison (ran)" in first.stderr
    manifest = {row["study"]: row["visit"] for row in csv.DictReader((out / "manifest.csv").open())}
    assert manifest == {"visit-2": "1", "visit-10": "2"}
    compare = out / "compare"
    comparison = json.loads((compare / "compare.json").read_text(encoding="utf-8"))
    assert comparison["exams"] == ["visit-2", "visit-10"]
    (follow,) = comparison["follow_ups"]
    assert f"visit-10: {follow['response']}: {follow['reason']}" in " ".join(first.stderr.split())
    for image in ("volumes.png", "slices.png"):
        assert min(png_size(compare / image)) > 100

    # the same files as btk compare writes for these two study folders: one code, not a twin
    by_hand = tmp_path / "by-hand"
    done = btk("compare", out / "visit-2", out / "visit-10", "-o", by_hand)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((by_hand / "compare.json").read_text(encoding="utf-8")) == comparison
    assert (by_hand / "compare.csv").read_text() == (compare / "compare.csv").read_text()
    assert "its T1c was not found" not in (compare / "compare.html").read_text()  # each visit's own T1c is shown
    assert "its T1c was not found" in (by_hand / "compare.html").read_text()  # btk compare knows only the folders

    # the reports link one another
    page = (compare / "compare.html").read_text(encoding="utf-8")
    assert 'href="../visit-2/report/report.html"' in page and 'href="../visit-10/report/report.html"' in page
    baseline = (out / "visit-2" / "report" / "report.html").read_text(encoding="utf-8")
    assert "Visit 1 of 2 of this patient, the baseline" in baseline and 'href="../../compare/compare.html"' in baseline
    follow_up = (out / "visit-10" / "report" / "report.html").read_text(encoding="utf-8")
    assert f"Response against the baseline: <b>{follow['response']}" in follow_up
    assert 'href="compare/compare.html"' in (out / "summary.html").read_text(encoding="utf-8")
    marker = read_marker(out, "compare")
    assert marker is not None and [v[0] for v in marker["details"]["inputs"]] == ["visit-2", "visit-10"]

    # resumed: nothing to do; a removed output is made again
    again = btk(*command)
    assert again.returncode == 0 and "Follow-up comparison (done before)" in again.stderr
    assert read_marker(out, "compare")["finished"] == marker["finished"]
    (compare / "volumes.png").unlink()
    time.sleep(1.1)  # marker times have one-second resolution
    redone = btk(*command)
    assert redone.returncode == 0 and "Follow-up comparison (ran)" in redone.stderr
    assert (compare / "volumes.png").is_file() and read_marker(out, "compare")["finished"] != marker["finished"]

    # a visit processed again with other candidates: its results changed, so the comparison is made again
    shutil.rmtree(out / "visit-10")
    sorted((candidates / "visit-10").iterdir())[0].unlink()
    changed = btk(*command)
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "Follow-up comparison (ran)" in changed.stderr and "none (all done before)" in changed.stderr
    now = json.loads((compare / "compare.json").read_text(encoding="utf-8"))
    clinical = json.loads((out / "visit-10" / "report" / "clinical.json").read_text(encoding="utf-8"))
    assert now["volumes_ml"]["WT"][1] == pytest.approx(clinical["regions"][0]["volume_ml"])
    assert now["volumes_ml"]["WT"][1] != comparison["volumes_ml"]["WT"][1]
