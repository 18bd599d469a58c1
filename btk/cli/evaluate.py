"""``btk evaluate``: score segmentations against references."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from btk.cli import common
from btk.console import console
from btk.errors import InputError, MissingFileError

if TYPE_CHECKING:
    from btk.evaluation import EvaluationRow


def evaluate(
    prediction: Annotated[Path, typer.Argument(help="Predicted segmentation, or a folder of them.")],
    reference: Annotated[
        Path, typer.Argument(help="Reference segmentation, or a folder of them (matched by case id).")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV file to write.")] = Path("evaluation.csv"),
    prediction_labels: Annotated[
        Optional[str], typer.Option("--pred-labels", help="Label convention of the predictions (default: detected).")
    ] = None,
    reference_labels: Annotated[
        Optional[str], typer.Option("--ref-labels", help="Label convention of the references (default: detected).")
    ] = None,
    force: common.ForceOption = False,
    verbose: common.VerboseOption = False,
) -> None:
    """Score predictions against references per case and region (WT, TC, ET for gliomas; each label
    convention's own regions): Dice, HD95, sensitivity, specificity and volumes, written as CSV.

    Two files evaluate one case; two folders evaluate every reference case, matching files by name
    (``CASE.nii.gz``, ``CASE-seg.nii.gz`` and ``CASE/CASE-seg.nii.gz`` all mean case ``CASE``).
    """
    common.set_verbose(verbose)
    from btk.evaluation import evaluate_case, evaluate_folders, write_csv
    from btk.io import guard_output

    for given in (prediction, reference):
        if not given.exists():
            raise MissingFileError("file or folder not found", path=given, hint="check the path")
    guard_output(output, [prediction, reference], force=force, replaceable=_is_evaluation_csv)
    if prediction.is_dir() != reference.is_dir():
        raise InputError(
            "give two files or two folders, not one of each", path=prediction if prediction.is_dir() else reference
        )
    if prediction.is_dir():
        rows = evaluate_folders(prediction, reference, prediction_labels, reference_labels)
    else:
        rows = evaluate_case(prediction, reference, None, prediction_labels, reference_labels)
    write_csv(rows, output)
    console.print(_summary_table(rows))
    console.print(f"Wrote {len(rows)} rows to {output}", highlight=False)


def _is_evaluation_csv(path: Path) -> bool:
    """Whether ``path`` is a CSV that ``btk evaluate`` wrote (which ``--force`` may replace)."""
    from btk.evaluation import CSV_COLUMNS

    try:
        with path.open(encoding="utf-8") as handle:
            return handle.readline().rstrip("\n") == ",".join(CSV_COLUMNS)
    except (OSError, ValueError):
        return False


def _summary_table(rows: list[EvaluationRow]) -> Table:
    cases = sorted({row.case for row in rows})
    table = Table(title=f"Evaluation of {len(cases)} case(s): mean per region")
    for column in ("region", "Dice", "HD95 (mm)", "sensitivity", "specificity", "pred (ml)", "ref (ml)"):
        table.add_column(column, justify="left" if column == "region" else "right")
    for region in dict.fromkeys(row.region for row in rows):
        metrics = [row.metrics for row in rows if row.region == region]
        means = [
            sum(getattr(m, f) for m in metrics) / len(metrics)
            for f in ("dice", "hd95_mm", "sensitivity", "specificity", "volume_pred_ml", "volume_ref_ml")
        ]
        table.add_row(region, *(f"{value:.3f}" if i != 1 else f"{value:.2f}" for i, value in enumerate(means)))
    return table
