"""Comparing one patient's exams over time: the files of ``btk compare`` and of the comparison ``btk run
--longitudinal`` makes after the patient's visits (:mod:`btk.pipeline.visits`).

Both read the exams from btk's study folders (``report/clinical.json``, ``report/report.json`` and the fused
segmentation it names) and write the same files with :func:`write_comparison`; the measures themselves are
:func:`btk.clinical.compare.compare_exams`'s.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from btk.console import logger
from btk.errors import BtkError, InputError
from btk.io import sha256
from btk.pipeline import markers
from btk.pipeline.discovery import Study
from btk.pipeline.study import StudyResult, run_atomically
from btk.report.data import FollowUpRecord

#: The files of a comparison, in the order they are written (``compare.json`` last: it marks them complete).
OUTPUTS = ("volumes.png", "slices.png", "compare.html", "compare.csv", "compare.json")
#: The folder (and stage name) of the comparison in a patient's output folder (``btk run --longitudinal``).
COMPARISON_STAGE = "compare"
#: The atlas space the exams must lie in (the clinical measures and the comparison work on its grid).
COMPARED_SPACE = "brats-sri24"


def write_comparison(
    exams: Sequence[Path],
    folder: Path,
    reports: Mapping[str, str] | None = None,
    t1c_images: Mapping[str, Path] | None = None,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Compare btk study folders of one patient (baseline first) and write :data:`OUTPUTS` into ``folder``.

    Args:
        exams: The study folders (``OUT/STUDY``), baseline first; each exam is named by its folder.
        folder: The folder to write into, made when the exams have been read (earlier files of these names are
            removed first, so none outlives a comparison they no longer belong to).
        reports: Exam name -> its report page, relative to ``folder``, for the comparison page to link.
        t1c_images: Exam name -> its T1c on the BraTS grid, where the caller knows it; the others' is looked for
            in their preprocessed exam (``STUDY/preprocess``), else the atlas T1 is shown.

    Returns:
        The comparison (``compare.json``'s content) and the files written (name without suffix -> file).

    Raises:
        InputError: Fewer than two exams, a folder that is not a btk study with clinical measures, an exam off
            the BraTS grid or in another label convention than the baseline.
    """
    import nibabel as nib

    from btk.clinical.compare import Exam, compare_exams
    from btk.io import atomic_path, load_label_map, open_nifti, require_grid, save_json
    from btk.report.compare import side_by_side, volume_plot, write_compare_page
    from btk.spaces import SPACES

    if len(exams) < 2:
        raise InputError("a comparison needs a baseline and at least one follow-up", hint="name two or more exams")
    space = SPACES[COMPARED_SPACE]
    loaded: list[Exam] = []
    images: list[nib.Nifti1Image] = []
    maps: list[nib.Nifti1Image] = []
    notes: list[str] = []
    for exam_folder in exams:
        findings, fused = read_compared_exam(exam_folder)
        image, segmentation = load_label_map(fused)
        require_grid(
            image,
            space.grid.shape,
            space.grid.affine,
            path=fused,
            grid="the BraTS grid",
            hint="compare btk results in BraTS space (the fused segmentation of btk run)",
        )
        if loaded and findings["labels"] != loaded[0].findings["labels"]:
            raise InputError(
                f"this exam's labels are {findings['labels']}, the baseline's {loaded[0].findings['labels']}",
                path=exam_folder,
                hint="run the exams with the same --labels",
            )
        loaded.append(Exam(exam_folder.name, segmentation, findings))
        maps.append(image)
        t1c = (t1c_images or {}).get(exam_folder.name) or _t1c(exam_folder)
        if t1c is None:
            notes.append(f"{exam_folder.name}: its T1c was not found; shown on the BraTS atlas T1 (SRI24).")
        images.append(open_nifti(t1c or space.template_path()))
    result = compare_exams(loaded)
    comparison = result.to_dict()
    folder.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        (folder / name).unlink(missing_ok=True)
    written = {
        "volumes": volume_plot(comparison, folder / "volumes.png"),
        "slices": side_by_side(images, maps, [e.name for e in loaded], comparison["labels"], folder / "slices.png"),
        "page": write_compare_page(comparison, folder / "compare.html", notes, reports or {}),
    }
    written["csv"] = folder / "compare.csv"
    with atomic_path(written["csv"]) as temporary, temporary.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(result.csv_rows())
    written["json"] = folder / "compare.json"
    save_json(comparison, written["json"])  # last: it marks the folder complete
    return comparison, written


def read_compared_exam(folder: Path) -> tuple[dict, Path]:
    """An exam's ``clinical.json`` and its fused segmentation; a clear error for anything else."""
    report = folder / "report"
    try:
        findings = json.loads((report / "clinical.json").read_text(encoding="utf-8"))
        files = json.loads((report / "report.json").read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            "not a btk study folder with clinical measures (report/clinical.json and report/report.json)",
            path=folder,
            hint="pass the study folders btk run wrote (OUT/STUDY), made with this btk version",
        ) from None
    if not isinstance(findings, dict) or "btk_clinical" not in findings:
        raise InputError("report/clinical.json was not written by btk", path=folder)
    if not findings.get("on_brats_grid"):
        raise InputError("the exam's measures were not made on the BraTS grid", path=folder)
    return findings, (report / files["fused"]).resolve()


def visit_t1c(study: Study) -> Path | None:
    """A visit's T1c on the BraTS grid when it is not in the visit's output folder: that of a ``brats`` study,
    or of a ``preprocessed`` one's exam (None for the others, and when it is not found)."""
    if study.kind == "brats":
        image = study.modalities.get("t1c")
        return Path(image) if image else None
    if study.kind == "preprocessed":
        return _t1c_of_exam(study.source)
    return None


def _t1c(folder: Path) -> Path | None:
    """The exam's T1c on the BraTS grid, from its preprocessed exam (None: not found)."""
    return _t1c_of_exam(folder / "preprocess") if (folder / "preprocess").is_dir() else None


def _t1c_of_exam(exam: Path) -> Path | None:
    """The T1c on the BraTS grid of a preprocessed exam folder (None: not found)."""
    try:
        from btk.preprocess import PreprocessedExam

        return PreprocessedExam.load(exam).images("brats")["t1c"]
    except (ImportError, OSError, ValueError, KeyError):
        return None


@dataclass(frozen=True)
class ComparisonResult:
    """What became of the comparison of a patient's visits (``btk run --longitudinal``).

    Args:
        visits: The visits' study names, baseline first.
        status: ``"ran"``, ``"done before"`` (its marker matched the visits' results) or ``"refused"``.
        reason: Why it was refused (a visit failed, its results cannot be compared); empty otherwise.
        folder: The folder holding :data:`OUTPUTS` (None when refused).
        responses: Follow-up visit -> its response category and why.
    """

    visits: tuple[str, ...]
    status: str
    reason: str = ""
    folder: Path | None = None
    responses: dict[str, str] = field(default_factory=dict)

    def record(self, output: Path) -> FollowUpRecord:
        """What the summary and the visits' pages show of it (the page relative to the output folder)."""
        page = None if self.folder is None else os.path.relpath(self.folder / "compare.html", output)
        return FollowUpRecord(self.visits, page, self.reason, dict(self.responses))


def compare_visits(
    output: Path,
    visits: Sequence[str],
    results: Mapping[str, StudyResult],
    *,
    force: bool = False,
    t1c_images: Mapping[str, Path] | None = None,
) -> ComparisonResult:
    """Compare a patient's visits once every visit is done: ``output/compare/`` (:data:`OUTPUTS`), made like a
    study's stage (written into a fresh folder, moved into place, then marked ``output/.btk/compare.json``).

    The marker records a checksum of each visit's clinical measures and fused segmentation: a run whose visits'
    results are unchanged skips the comparison, one where any changed (or ``force``) makes it again. When a
    visit failed, or its results cannot be compared, the comparison is refused with the reason, and an earlier
    comparison is removed (it would no longer describe these visits).

    Args:
        output: The patient's output folder (each visit's results in ``output/<visit>/``).
        visits: The visits' study names, baseline first.
        results: What became of each study of the run.
        force: Make the comparison again even when its marker matches.
        t1c_images: Visit -> its T1c on the BraTS grid, where it is not in the visit's folder.
    """
    visits = tuple(visits)
    with markers.study_lock(output):
        shutil.rmtree(markers.state_folder(output) / "partial" / COMPARISON_STAGE, ignore_errors=True)
        outcomes = [results.get(visit) for visit in visits]
        reasons = [
            f"visit {visit} was not processed"
            if result is None
            else f"visit {visit} failed at {result.stage}: {result.reason}"
            for visit, result in zip(visits, outcomes)
            if result is None or result.status != "ok"
        ]
        try:
            inputs = [] if reasons else _fingerprint(output, visits)
        except BtkError as error:
            reasons = [str(error)]
        if reasons:
            _remove_comparison(output)
            return ComparisonResult(visits, "refused", "no comparison: " + "; ".join(reasons))
        marker = None if force else markers.read_marker(output, COMPARISON_STAGE)
        folder = output / COMPARISON_STAGE
        if marker is not None and marker.get("details", {}).get("inputs") == inputs:
            comparison = json.loads((folder / "compare.json").read_text(encoding="utf-8"))
            return ComparisonResult(visits, "done before", folder=folder, responses=_responses(comparison))
        logger.info("comparing the %d visits", len(visits))
        reports = {visit: f"../{visit}/report/report.html" for visit in visits}
        made: dict[str, Any] = {}

        def produce(partial: Path) -> tuple[dict[str, Path], dict]:
            comparison, written = write_comparison([output / v for v in visits], partial, reports, t1c_images)
            made.update(comparison)
            return written, {"visits": list(visits), "inputs": inputs}

        try:
            run_atomically(output, COMPARISON_STAGE, produce)
        except BtkError as error:
            _remove_comparison(output)
            return ComparisonResult(visits, "refused", f"no comparison: {error}")
        return ComparisonResult(visits, "ran", folder=folder, responses=_responses(made))


def _fingerprint(output: Path, visits: Sequence[str]) -> list[list[str]]:
    """Each visit's name with the checksums of what the comparison reads of it (clinical measures, fused map)."""
    prints = []
    for visit in visits:
        folder = output / visit
        _, fused = read_compared_exam(folder)
        prints.append([visit, sha256(folder / "report" / "clinical.json"), sha256(fused)])
    return prints


def _responses(comparison: Mapping[str, Any]) -> dict[str, str]:
    return {follow["exam"]: f"{follow['response']}: {follow['reason']}" for follow in comparison["follow_ups"]}


def _remove_comparison(output: Path) -> None:
    """Remove an earlier comparison of the visits, marker first (btk's own output, in the patient's folder)."""
    markers.remove_marker(output, COMPARISON_STAGE)
    shutil.rmtree(output / COMPARISON_STAGE, ignore_errors=True)
