"""Evaluation of case after case: the settings, the rows, a case's or two folders' scores, the CSV.

The package's front page (:mod:`btk.evaluation`) shows the calls; everything here is importable from it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from btk.errors import BtkError, InputError, MissingFileError
from btk.evaluation import brats2023, brats2025
from btk.evaluation.brats2023 import Brats2023Row, evaluate_brats2023
from btk.evaluation.brats2025 import Brats2025MetsRow, Brats2025Row, MetsThresholds, evaluate_brats2025
from btk.evaluation.metrics import (
    HD95_DEFINITIONS,
    RegionMetrics,
    empty_hd95_penalty_mm,
    region_metrics,
)
from btk.io import atomic_path, is_nifti, load_label_map, strip_nifti_suffix
from btk.labels import LabelConvention, detect_convention, get_convention

if TYPE_CHECKING:
    import nibabel as nib

CSV_COLUMNS = ("case", "region", "dice", "hd95_mm", "sensitivity", "specificity", "volume_pred_ml", "volume_ref_ml")
#: The evaluation schemes (see the module's documentation).
SCHEMES = ("legacy", "brats2023", "brats2025")


@dataclass(frozen=True)
class EvaluationSettings:
    """How to evaluate: the scheme, the challenge whose settings apply, and the legacy HD95's definition.

    Args:
        scheme: ``"legacy"``, ``"brats2023"`` or ``"brats2025"``.
        challenge: For ``brats2023``, the challenge's lesion settings: ``gli``, ``ssa``, ``men``, ``ped``, ``met``;
            for ``brats2025``, the official configuration: ``gli``, ``ped``, ``men`` (MenPre), ``men-rt`` (MenRT),
            ``met`` (mets), ``goat`` (GoAT).
        hd95: For ``legacy``, the HD95 definition: ``"voxel"`` (btk's) or ``"surface-area"`` (the 2023 code's).
        mets: For ``brats2025`` with ``met``, the metastases variant's thresholds (default: the official ones).

    Raises:
        InputError: For an unknown scheme, challenge or HD95 definition, or thresholds without ``met``.
    """

    scheme: str = "legacy"
    challenge: str = "gli"
    hd95: str = "voxel"
    mets: MetsThresholds | None = None

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise InputError(f"unknown evaluation scheme {self.scheme!r}", hint=f"use one of {', '.join(SCHEMES)}")
        if self.hd95 not in HD95_DEFINITIONS:
            raise InputError(f"unknown HD95 definition {self.hd95!r}", hint=f"use one of {', '.join(HD95_DEFINITIONS)}")
        if self.scheme == "brats2023":
            brats2023.check_challenge(self.challenge)
        if self.scheme == "brats2025":
            brats2025.check_challenge(self.challenge)
        if self.scheme != "legacy" and self.hd95 != "voxel":
            raise InputError(
                f"--hd95 chooses the HD95 of the legacy scheme; {self.scheme} has its own",
                hint="drop --hd95, or use --scheme legacy",
            )
        if self.mets is not None and not (self.scheme == "brats2025" and self.challenge == "met"):
            raise InputError(
                "the metastases thresholds belong to the BraTS 2025 metastases evaluation",
                hint="use them with --scheme brats2025 --challenge met, or drop them",
            )

    @property
    def columns(self) -> tuple[str, ...]:
        """The CSV columns of the scheme."""
        if self.scheme == "brats2025" and brats2025.check_challenge(self.challenge).by_lesion_size:
            return Brats2025MetsRow.COLUMNS
        return {"brats2023": Brats2023Row.COLUMNS, "brats2025": Brats2025Row.COLUMNS}.get(self.scheme, CSV_COLUMNS)


_SEGMENTATION_SUFFIX = re.compile(r"[-_](seg|label|labels|mask)$", re.IGNORECASE)


@dataclass(frozen=True)
class EvaluationRow:
    """The legacy metrics of one region of one case."""

    COLUMNS: ClassVar[tuple[str, ...]] = CSV_COLUMNS

    case: str
    region: str
    metrics: RegionMetrics

    @property
    def dice(self) -> float:
        """The region's Dice."""
        return self.metrics.dice

    def as_csv_row(self) -> dict[str, object]:
        """The row as a mapping of :data:`CSV_COLUMNS` to values."""
        return {"case": self.case, "region": self.region, **asdict(self.metrics)}


def evaluate_arrays(
    prediction: np.ndarray,
    reference: np.ndarray,
    spacing: tuple[float, ...] = (1.0, 1.0, 1.0),
    case: str = "case",
    prediction_labels: str | LabelConvention | None = None,
    reference_labels: str | LabelConvention | None = None,
    settings: EvaluationSettings | None = None,
) -> list[EvaluationRow] | list[Brats2023Row] | list[Brats2025Row]:
    """Evaluate the regions of two label maps on the same grid (WT, TC and ET for gliomas).

    Each map is read in its own label convention (detected from its values unless given), so a 0/1/2/4
    prediction can be scored against a 0/1/2/3 reference. The legacy scheme scores the reference
    convention's regions that the prediction's convention declares too, in the reference's order
    (conventions without a region in common are refused); ``brats2023`` scores WT, TC and ET.
    ``brats2025`` scores the regions of the challenge's official configuration and reads the label values
    as the configuration numbers them unless a convention is given (then the map is converted to it).
    """
    settings = settings or EvaluationSettings()
    if prediction.shape != reference.shape:
        raise InputError(f"prediction shape {prediction.shape} differs from reference shape {reference.shape}")
    if settings.scheme == "brats2025":
        return evaluate_brats2025(
            prediction,
            reference,
            spacing,
            case,
            settings.challenge,
            get_convention(prediction_labels) if prediction_labels else None,
            get_convention(reference_labels) if reference_labels else None,
            settings.mets,
        )
    prediction_convention = get_convention(prediction_labels) if prediction_labels else detect_convention(prediction)
    reference_convention = get_convention(reference_labels) if reference_labels else detect_convention(reference)
    prediction_convention.validate(prediction)
    reference_convention.validate(reference)
    if settings.scheme == "brats2023":
        return evaluate_brats2023(
            prediction, reference, prediction_convention, reference_convention, spacing, case, settings.challenge
        )
    regions = [r for r in reference_convention.region_names if r in prediction_convention.region_names]
    if not regions:
        raise InputError(
            f"a {prediction_convention.name} prediction and a {reference_convention.name} reference have no "
            "region in common",
            hint="name the right conventions with --pred-labels and --ref-labels",
        )
    return [
        EvaluationRow(
            case=case,
            region=region,
            metrics=region_metrics(
                prediction_convention.region_mask(prediction, region),
                reference_convention.region_mask(reference, region),
                spacing,
                settings.hd95,
                empty_hd95_penalty_mm(prediction.shape, spacing),
            ),
        )
        for region in regions
    ]


def evaluate_case(
    prediction_path: str | Path,
    reference_path: str | Path,
    case: str | None = None,
    prediction_labels: str | LabelConvention | None = None,
    reference_labels: str | LabelConvention | None = None,
    settings: EvaluationSettings | None = None,
) -> list[EvaluationRow] | list[Brats2023Row] | list[Brats2025Row]:
    """Evaluate one predicted segmentation file against its reference file (see :func:`evaluate_arrays`)."""
    prediction_image, prediction = load_label_map(prediction_path)
    reference_image, reference = load_label_map(reference_path)
    _check_same_grid(prediction_image, prediction_path, reference_image, reference_path)
    spacing = tuple(float(s) for s in reference_image.header.get_zooms()[:3])
    try:
        return evaluate_arrays(
            prediction,
            reference,
            spacing,
            case or case_id(reference_path),
            prediction_labels,
            reference_labels,
            settings,
        )
    except BtkError as error:
        raise error.replace(path=error.path or prediction_path) from None


def case_id(path: str | Path) -> str:
    """The case a segmentation file belongs to: its name without suffixes like ``.nii.gz`` and ``-seg``."""
    return _SEGMENTATION_SUFFIX.sub("", strip_nifti_suffix(path))


def pair_cases(prediction_folder: str | Path, reference_folder: str | Path) -> list[tuple[str, Path, Path]]:
    """Match predictions to references by case id, searching both folders recursively.

    Every reference needs a prediction: a missing one is an error (silently skipping it would inflate
    the cohort's scores). Predictions without a reference are ignored.
    """
    predictions = _index_folder(prediction_folder)
    references = _index_folder(reference_folder)
    if not references:
        raise InputError("no NIfTI files found", path=reference_folder)
    missing = sorted(set(references) - set(predictions))
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(
            f"no prediction for {len(missing)} reference case(s): {shown}",
            path=prediction_folder,
            hint="name each prediction after its case (e.g. CASE.nii.gz or CASE-seg.nii.gz)",
        )
    return [(case, predictions[case], references[case]) for case in sorted(references)]


def _index_folder(folder: str | Path) -> dict[str, Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError("folder not found", path=folder)
    index: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and is_nifti(path):
            case = case_id(path)
            if case in index:
                raise InputError(f"two files for case {case}: {index[case]} and {path}", path=folder)
            index[case] = path
    return index


def evaluate_folders(
    prediction_folder: str | Path,
    reference_folder: str | Path,
    prediction_labels: str | LabelConvention | None = None,
    reference_labels: str | LabelConvention | None = None,
    settings: EvaluationSettings | None = None,
) -> list[EvaluationRow] | list[Brats2023Row] | list[Brats2025Row]:
    """Evaluate every reference case in a folder against the prediction of the same case id."""
    rows: list = []
    for case, prediction, reference in pair_cases(prediction_folder, reference_folder):
        rows.extend(evaluate_case(prediction, reference, case, prediction_labels, reference_labels, settings))
    return rows


def write_csv(rows: Sequence[EvaluationRow | Brats2023Row | Brats2025Row], path: str | Path) -> None:
    """Write evaluation rows atomically as CSV, one row per case and region, with their scheme's columns
    (:data:`CSV_COLUMNS` for the legacy scheme, :attr:`Brats2023Row.COLUMNS`, :attr:`Brats2025Row.COLUMNS`);
    floats with 6 significant digits (``nan`` and ``inf`` as such)."""
    buffer = io.StringIO()
    columns = rows[0].COLUMNS if rows else CSV_COLUMNS
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.as_csv_row().items()})
    with atomic_path(path) as temporary:
        temporary.write_text(buffer.getvalue(), encoding="utf-8")


def _check_same_grid(a: nib.Nifti1Image, a_path: str | Path, b: nib.Nifti1Image, b_path: str | Path) -> None:
    if a.shape[:3] != b.shape[:3]:
        raise InputError(f"shape {a.shape[:3]} differs from the reference's {b.shape[:3]} ({b_path})", path=a_path)
    if not np.allclose(a.affine, b.affine, atol=1e-3):
        raise InputError(
            f"the affine differs from the reference's ({b_path}); the images are not on the same grid",
            path=a_path,
            hint="resample the prediction onto the reference grid first",
        )
