"""``btk evaluate``: score segmentations against references."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from btk.cli import common
from btk.console import console
from btk.errors import InputError, MissingExtraError, MissingFileError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from btk.evaluation import Brats2023Row, Brats2025Row, EvaluationRow, EvaluationSettings


def evaluate(
    prediction: Annotated[Path, typer.Argument(help="Predicted segmentation, or a folder of them.")],
    reference: Annotated[
        Path, typer.Argument(help="Reference segmentation, or a folder of them (matched by case id).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV file to write.")] = Path("evaluation.csv"),
    prediction_labels: Annotated[
        Optional[str],
        typer.Option(
            "--pred-labels",
            help="Label convention of the predictions (default: detected; brats2025: the challenge's numbering).",
        ),
    ] = None,
    reference_labels: Annotated[
        Optional[str],
        typer.Option(
            "--ref-labels",
            help="Label convention of the references (default: detected; brats2025: the challenge's numbering).",
        ),
    ] = None,
    scheme: Annotated[
        str,
        typer.Option(
            help="legacy: btk's metrics per region of the label convention; brats2023: the official BraTS 2023 "
            "lesion-wise metrics, number for number; brats2025: the official BraTS 2025 evaluator "
            "(brats-evaluation on panoptica), number for number."
        ),
    ] = "legacy",
    challenge: Annotated[
        str,
        typer.Option(
            help="brats2023: the challenge's lesion settings: gli, ssa, men, ped, met. brats2025: the official "
            "configuration: gli, ped, men (MenPre), men-rt (MenRT), met (mets), goat (GoAT)."
        ),
    ] = "gli",
    hd95: Annotated[
        str,
        typer.Option(
            help="legacy: the HD95 definition: voxel (btk's: boundary voxels, unweighted) or surface-area "
            "(the BraTS 2023 code's: surface elements weighted by area)."
        ),
    ] = "voxel",
    mets_volume_threshold: Annotated[
        Optional[float],
        typer.Option(
            parser=common.FiniteFloat(0),
            help="brats2025 --challenge met: reference lesions of at least this volume (mm³) are large, the "
            "others small (default: 20, the official parser's).",
        ),
    ] = None,
    mets_overlap_threshold: Annotated[
        Optional[float],
        typer.Option(
            parser=common.Probability,
            help="brats2025 --challenge met: the smallest Dice of a matched lesion for it to count as detected "
            "(default: 0.1, the official parser's).",
        ),
    ] = None,
    report: Annotated[
        bool,
        typer.Option(
            "--report",
            help="Also write a cohort report beside the CSV (OUTPUT_report/: statistics per region, worst cases, "
            "volumes and lesion counts, figures, index.html).",
        ),
    ] = False,
    images: Annotated[
        Optional[Path],
        typer.Option(
            help="With --report: a folder holding each case's images (IMAGES/CASE/*_t1c.nii.gz ...; for two files, "
            "the images themselves) for intensity and shape features per region (features.csv)."
        ),
    ] = None,
    force: common.ForceOption = False,
    verbose: common.VerboseOption = False,
) -> None:
    """Score predictions against references per case and region, written as CSV (one row per case and region).

    --scheme legacy (default): Dice, HD95, sensitivity, specificity and volumes per region of the label
    convention (WT, TC, ET for gliomas). --scheme brats2023: the official BraTS 2023 lesion-wise metrics
    (lesion-wise and whole-region Dice and HD95, lesion counts, sensitivity, specificity) for WT, TC, ET,
    with the lesion settings of --challenge. --scheme brats2025: the official BraTS 2025 metrics (global and
    lesion-wise Dice, NSD and HD95, instance counts and F1) for the regions of the --challenge's configuration
    (wt, tc, et, netc, snfh, rc for gli), reading label values as the configuration numbers them unless
    --pred-labels / --ref-labels name another convention; for metastases (--challenge met) the official
    parser's metastases variant: lesion-wise means over the large lesions, detection of large and small
    lesions apart (--mets-volume-threshold, --mets-overlap-threshold).

    Two files evaluate one case; two folders evaluate every reference case, matching files by name
    (``CASE.nii.gz``, ``CASE-seg.nii.gz`` and ``CASE/CASE-seg.nii.gz`` all mean case ``CASE``).
    """
    common.set_verbose(verbose)
    from btk.evaluation import (
        EvaluationSettings,
        MetsThresholds,
        case_id,
        evaluate_case,
        evaluate_folders,
        pair_cases,
        write_csv,
    )
    from btk.io import guard_output, strip_nifti_suffix

    mets = None
    if mets_volume_threshold is not None or mets_overlap_threshold is not None:
        defaults = MetsThresholds()
        mets = MetsThresholds(
            defaults.volume_mm3 if mets_volume_threshold is None else mets_volume_threshold,
            defaults.overlap if mets_overlap_threshold is None else mets_overlap_threshold,
        )
    settings = EvaluationSettings(scheme, challenge, hd95, mets)
    if images is not None and not report:
        raise InputError("--images gives the features of the cohort report", hint="add --report")
    if report and importlib.util.find_spec("matplotlib") is None:
        raise MissingExtraError("the cohort report needs matplotlib, which is not installed", extra="pipeline")
    if images is not None and not images.is_dir():
        raise MissingFileError("the images folder does not exist or is not a folder", path=images)
    for given in (prediction, reference):
        if not given.exists():
            raise MissingFileError("file or folder not found", path=given, hint="check the path")
    guard_output(output, [prediction, reference], force=force, replaceable=_is_evaluation_csv)
    report_folder = output.with_name(f"{strip_nifti_suffix(output).removesuffix('.csv')}_report")
    if report:
        guard_output(report_folder, [prediction, reference, images], force=force, folder=True)
    if prediction.is_dir() != reference.is_dir():
        raise InputError(
            "give two files or two folders, not one of each", path=prediction if prediction.is_dir() else reference
        )
    if prediction.is_dir():
        cases = pair_cases(prediction, reference)
        rows = evaluate_folders(prediction, reference, prediction_labels, reference_labels, settings)
    else:
        cases = [(case_id(reference), prediction, reference)]
        rows = evaluate_case(prediction, reference, None, prediction_labels, reference_labels, settings)
    write_csv(rows, output)
    if report:
        _write_report(rows, cases, settings, report_folder, images, prediction_labels, reference_labels)
    console.print(_summary_table(rows))
    console.print(f"Wrote {len(rows)} rows to {output}", highlight=False)


def _write_report(
    rows: Sequence[EvaluationRow | Brats2023Row | Brats2025Row],
    cases: Sequence[tuple[str, Path, Path]],
    settings: EvaluationSettings,
    folder: Path,
    images: Path | None,
    prediction_labels: str | None,
    reference_labels: str | None,
) -> None:
    """The cohort report of ``rows`` into ``folder``, written atomically."""
    from btk.evaluation.brats2025 import region_masks
    from btk.evaluation.cohort import analyse, case_facts, convention_masks, images_in, region_features
    from btk.labels import get_convention
    from btk.preprocess.output_folder import built_atomically
    from btk.report.evaluation import write_evaluation_report

    regions = tuple(dict.fromkeys(row.region for row in rows))
    if settings.scheme == "brats2025":
        conventions = [get_convention(labels) if labels else None for labels in (prediction_labels, reference_labels)]
        masks_of = region_masks(settings.challenge, *conventions)
    else:
        masks_of = convention_masks(regions, prediction_labels, reference_labels)
    facts = [
        fact for case, prediction, reference in cases for fact in case_facts(prediction, reference, case, masks_of)
    ]
    features = None
    if images is not None:
        features = []
        for case, _, reference in cases:
            folder_of_case = images if len(cases) == 1 and not (images / case).is_dir() else images / case
            if not folder_of_case.is_dir():
                raise MissingFileError(
                    f"no images folder for case {case}",
                    path=folder_of_case,
                    hint="put each case's images in IMAGES/CASE/",
                )
            found = images_in(folder_of_case)
            if not found:
                raise InputError(f"no images of case {case}", path=folder_of_case, hint="name them *_t1c.nii.gz, ...")
            try:
                features.extend(region_features(reference, found, case, masks_of))
            except ValueError as error:
                raise InputError(str(error), path=images, hint="give images on the references' grid") from None
    with built_atomically(folder.absolute()) as staging:
        write_evaluation_report(analyse(rows, facts, settings.scheme), staging, features)
    console.print(f"Cohort report: {folder / 'index.html'}", highlight=False)


def _is_evaluation_csv(path: Path) -> bool:
    """Whether ``path`` is a CSV that ``btk evaluate`` wrote (which ``--force`` may replace)."""
    from btk.evaluation import SCHEMES, EvaluationSettings

    headers = {",".join(EvaluationSettings(scheme).columns) for scheme in SCHEMES}
    try:
        with path.open(encoding="utf-8") as handle:
            return handle.readline().rstrip("\n") in headers
    except (OSError, ValueError):
        return False


def _summary_table(rows: Sequence[EvaluationRow | Brats2023Row | Brats2025Row]) -> Table:
    """The mean of the first six metrics per region (the CSV has them all)."""
    cases = sorted({row.case for row in rows})
    table = Table(title=f"Evaluation of {len(cases)} case(s): mean per region")
    metrics = [c for c in (rows[0].COLUMNS if rows else ()) if c not in ("case", "region")][:6]  # what fits
    for column in ("region", *metrics):
        table.add_column(column.replace("_", " "), justify="left" if column == "region" else "right")
    for region in dict.fromkeys(row.region for row in rows):
        values = [row.as_csv_row() for row in rows if row.region == region]
        means = [sum(float(str(v[m])) for v in values) / len(values) for m in metrics]
        table.add_row(region, *(f"{value:.2f}" if "hd95" in m else f"{value:.3f}" for m, value in zip(metrics, means)))
    return table
