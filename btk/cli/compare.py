"""``btk compare``: one patient's exams over time (btk output folders of the same patient)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from btk.cli import common
from btk.console import console
from btk.errors import InputError

#: What ``btk compare`` writes into its output folder.
OUTPUTS = ("compare.json", "compare.csv", "compare.html", "volumes.png", "slices.png")


def compare(
    exams: Annotated[
        list[Path],
        typer.Argument(help="The patient's exams, baseline first: btk run's study folders (OUT/STUDY)."),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder to write compare.json, compare.csv and compare.html into.")
    ],
    force: common.ForceOption = False,
    verbose: common.VerboseOption = False,
) -> None:
    """Compare the exams of one patient: per region the volume change (ml, %), new and vanished foci, the
    change of the RANO sum of products and the volumetric RANO response category, with a volume-over-time plot
    and every exam on the same slices. For research use, not for diagnosis."""
    common.set_verbose(verbose)
    import csv

    import nibabel as nib

    from btk.clinical.compare import Exam, compare_exams
    from btk.io import atomic_path, guard_output, load_label_map, open_nifti, require_grid, save_json
    from btk.report.compare import side_by_side, volume_plot, write_compare_page
    from btk.spaces import SPACES

    if len(exams) < 2:
        raise InputError(
            "btk compare needs a baseline and at least one follow-up", hint="name two or more study folders"
        )
    guard_output(output, exams, force=force, folder=True)
    loaded: list[Exam] = []
    images: list[nib.Nifti1Image] = []
    maps: list[nib.Nifti1Image] = []
    notes: list[str] = []
    for folder in exams:
        findings, fused = _read_exam(folder)
        image, segmentation = load_label_map(fused)
        require_grid(
            image,
            SPACES["brats-sri24"].grid.shape,
            SPACES["brats-sri24"].grid.affine,
            path=fused,
            grid="the BraTS grid",
            hint="compare btk results in BraTS space (the fused segmentation of btk run)",
        )
        if loaded and findings["labels"] != loaded[0].findings["labels"]:
            raise InputError(
                f"this exam's labels are {findings['labels']}, the baseline's {loaded[0].findings['labels']}",
                path=folder,
                hint="run the exams with the same --labels",
            )
        loaded.append(Exam(folder.name, segmentation, findings))
        maps.append(image)
        t1c = _t1c(folder)
        if t1c is None:
            notes.append(f"{folder.name}: its T1c was not found; shown on the BraTS atlas T1 (SRI24).")
        images.append(open_nifti(t1c or SPACES["brats-sri24"].template_path()))
    result = compare_exams(loaded)
    comparison = result.to_dict()
    output.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:  # btk's own earlier outputs (--force): none may outlive this run
        (output / name).unlink(missing_ok=True)
    volume_plot(comparison, output / "volumes.png")
    side_by_side(
        images,
        maps,
        [e.name for e in loaded],
        comparison["labels"],
        output / "slices.png",
    )
    write_compare_page(comparison, output / "compare.html", notes)
    with atomic_path(output / "compare.csv") as temporary, temporary.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(result.csv_rows())
    save_json(comparison, output / "compare.json")  # last: it marks the folder complete
    for follow in comparison["follow_ups"]:
        console.print(f"{follow['exam']}: {follow['response']} ({follow['reason']})", highlight=False)
    console.print(
        f"Wrote compare.html, compare.csv and compare.json into {output}. For research use only.", highlight=False
    )


def _read_exam(folder: Path) -> tuple[dict, Path]:
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


def _t1c(folder: Path) -> Path | None:
    """The exam's T1c on the BraTS grid, from its preprocessed exam (None: not found)."""
    if not (folder / "preprocess").is_dir():
        return None
    try:
        from btk.preprocess import PreprocessedExam

        return PreprocessedExam.load(folder / "preprocess").images("brats")["t1c"]
    except (ImportError, OSError, ValueError, KeyError):
        return None
