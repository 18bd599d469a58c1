"""Cohort analysis of an evaluation: the statistics researchers publish, the weak cases, and why they are weak.

:func:`analyse` turns the rows of an evaluation (any scheme) and each case's facts (:func:`case_facts`:
reference and predicted volume and lesion count per region) into a :class:`CohortAnalysis`: per region and
metric the mean, standard deviation, median, quartiles and range; the worst cases by Dice and by HD95; and
the cases whose reference lacks a region (the classic "ET absent" trap: Dice 1 or 0 and HD95 0 or the
penalty, whatever the rest of the case looks like). :func:`region_features` gives first-order intensity and
shape features of each reference region per modality. :mod:`btk.report.evaluation` renders the analysis.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from btk.io import load_label_map, load_nifti
from btk.labels import LabelConvention, detect_convention, get_convention

#: The scheme's Dice and HD95 columns, the ones cases are ranked by.
RANKED_BY = {
    "legacy": ("dice", "hd95_mm"),
    "brats2023": ("lesionwise_dice", "lesionwise_hd95_mm"),
    "brats2025": ("lesionwise_dsc_mean", "lesionwise_hd95_mean_mm"),
}


@dataclass(frozen=True)
class Statistics:
    """Summary statistics of one metric over the cases (std: sample standard deviation, ddof 1), over the
    finite values; ``undefined`` counts those left out (NaN or infinite, as the brats2025 scheme has them)."""

    n: int
    mean: float
    std: float
    median: float
    q1: float
    q3: float
    minimum: float
    maximum: float
    undefined: int = 0

    @classmethod
    def of(cls, values: Sequence[float]) -> Statistics:
        every = np.asarray(values, dtype=float)
        array = every[np.isfinite(every)]
        if array.size == 0:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan, nan, nan, nan, int(every.size))
        q1, median, q3 = np.percentile(array, (25, 50, 75))
        std = float(array.std(ddof=1)) if array.size > 1 else 0.0
        return cls(
            int(array.size),
            float(array.mean()),
            std,
            float(median),
            float(q1),
            float(q3),
            float(array.min()),
            float(array.max()),
            int(every.size - array.size),
        )


@dataclass(frozen=True)
class CaseFacts:
    """One region of one case: volumes (ml) and lesion counts (26-connected components) of both maps."""

    case: str
    region: str
    reference_ml: float
    prediction_ml: float
    reference_lesions: int
    prediction_lesions: int


@dataclass(frozen=True)
class CohortAnalysis:
    """What the cohort report shows.

    Attributes:
        scheme: The evaluation scheme of the rows.
        regions: The regions, in order.
        statistics: Region -> metric -> statistics over the cases.
        worst_by_dice: Region -> the cases with the lowest Dice, worst first, with the value.
        worst_by_hd95: Region -> the cases with the highest HD95, worst first, with the value.
        facts: Each case's volumes and lesion counts per region.
        absent: Region -> the cases whose reference has none of it.
        dice_metric, hd95_metric: The columns the cases are ranked by.
        per_case: Region -> (case, Dice, HD95) of every case, in case order.
    """

    scheme: str
    regions: tuple[str, ...]
    statistics: dict[str, dict[str, Statistics]]
    worst_by_dice: dict[str, list[tuple[str, float]]]
    worst_by_hd95: dict[str, list[tuple[str, float]]]
    facts: list[CaseFacts]
    absent: dict[str, list[str]]
    dice_metric: str
    hd95_metric: str
    per_case: dict[str, list[tuple[str, float, float]]]


def analyse(
    rows: Sequence[object], facts: Sequence[CaseFacts], scheme: str = "legacy", worst: int = 10
) -> CohortAnalysis:
    """The cohort analysis of evaluation rows (each with ``case``, ``region`` and ``as_csv_row()``)."""
    table = [row.as_csv_row() for row in rows]  # type: ignore[attr-defined]
    regions = tuple(dict.fromkeys(str(r["region"]) for r in table))
    metrics = [c for c in (table[0] if table else {}) if c not in ("case", "region")]
    dice_metric, hd95_metric = RANKED_BY[scheme]
    statistics = {
        region: {m: Statistics.of([float(r[m]) for r in table if r["region"] == region]) for m in metrics}
        for region in regions
    }

    def ranked(region: str, metric: str, highest: bool) -> list[tuple[str, float]]:
        values = [(str(r["case"]), float(r[metric])) for r in table if r["region"] == region]
        values = [(case, value) for case, value in values if not np.isnan(value)]  # undefined: not ranked
        return sorted(values, key=lambda item: (-item[1] if highest else item[1], item[0]))[:worst]

    return CohortAnalysis(
        scheme=scheme,
        regions=regions,
        statistics=statistics,
        worst_by_dice={region: ranked(region, dice_metric, highest=False) for region in regions},
        worst_by_hd95={region: ranked(region, hd95_metric, highest=True) for region in regions},
        facts=list(facts),
        absent={
            region: sorted(f.case for f in facts if f.region == region and f.reference_ml == 0) for region in regions
        },
        dice_metric=dice_metric,
        hd95_metric=hd95_metric,
        per_case={
            region: sorted(
                (str(r["case"]), float(r[dice_metric]), float(r[hd95_metric])) for r in table if r["region"] == region
            )
            for region in regions
        },
    )


#: Region masks of a label map: (map, ``"prediction"`` or ``"reference"``) -> region -> boolean mask.
RegionMasks = Callable[[np.ndarray, str], dict[str, np.ndarray]]


def convention_masks(
    regions: Sequence[str],
    prediction_labels: str | LabelConvention | None = None,
    reference_labels: str | LabelConvention | None = None,
) -> RegionMasks:
    """Region masks of maps read in their label convention (detected per map unless given), as the legacy and
    brats2023 schemes read them."""

    def masks(array: np.ndarray, role: str) -> dict[str, np.ndarray]:
        given = prediction_labels if role == "prediction" else reference_labels
        convention = get_convention(given) if given else detect_convention(array)
        return {region: convention.region_mask(array, region) for region in regions}

    return masks


def case_facts(prediction: Path, reference: Path, case: str, masks_of: RegionMasks) -> list[CaseFacts]:
    """Volumes and lesion counts (26-connected components) of both maps, per region."""
    from scipy import ndimage

    prediction_image, predicted = load_label_map(prediction)
    _, actual = load_label_map(reference)
    voxel_ml = float(np.prod(prediction_image.header.get_zooms()[:3])) / 1000.0
    everywhere = np.ones((3, 3, 3), bool)
    reference_masks, prediction_masks = masks_of(actual, "reference"), masks_of(predicted, "prediction")
    found = []
    for region, actual_mask in reference_masks.items():
        counts = [int(ndimage.label(m, structure=everywhere)[1]) for m in (actual_mask, prediction_masks[region])]
        found.append(
            CaseFacts(
                case,
                region,
                np.count_nonzero(actual_mask) * voxel_ml,
                np.count_nonzero(prediction_masks[region]) * voxel_ml,
                counts[0],
                counts[1],
            )
        )
    return found


#: The columns of :func:`region_features`.
FEATURE_COLUMNS = (
    "case",
    "region",
    "modality",
    "voxels",
    "volume_ml",
    "surface_mm2",
    "sphericity",
    "extent_x_mm",
    "extent_y_mm",
    "extent_z_mm",
    "mean",
    "std",
    "median",
    "p10",
    "p90",
    "minimum",
    "maximum",
    "skewness",
    "kurtosis",
)


def region_features(
    reference: Path, images: Mapping[str, Path], case: str, masks_of: RegionMasks
) -> list[dict[str, object]]:
    """First-order intensity and shape features of each reference region in each image (modality -> file).

    Shape: voxels, volume, surface area (voxel faces between the region and the rest, in mm^2), sphericity
    (pi^(1/3) (6V)^(2/3) / A) and extent per axis. Intensity, over the region's voxels: mean, standard
    deviation, median, 10th and 90th percentiles, range, skewness and excess kurtosis. An empty region has
    zero shape and no intensity features.
    """
    reference_image, labels = load_label_map(reference)
    spacing = tuple(float(s) for s in reference_image.header.get_zooms()[:3])
    data = {modality: load_nifti(path)[1].astype(np.float64) for modality, path in images.items()}
    rows = []
    for region, mask in masks_of(labels, "reference").items():
        shape = _shape_features(mask, spacing)
        for modality, values in data.items():
            if values.shape[:3] != mask.shape:
                raise ValueError(f"the {modality} image of {case} is not on the reference's grid")
            rows.append({"case": case, "region": region, "modality": modality, **shape, **_intensity(values[mask])})
    return rows


def _shape_features(mask: np.ndarray, spacing: tuple[float, ...]) -> dict[str, object]:
    voxels = int(np.count_nonzero(mask))
    volume = voxels * float(np.prod(spacing))
    faces = {0: spacing[1] * spacing[2], 1: spacing[0] * spacing[2], 2: spacing[0] * spacing[1]}
    padded = np.pad(mask, 1)
    surface = sum(float(np.count_nonzero(np.diff(padded, axis=axis))) * area for axis, area in faces.items())
    extents = [0.0, 0.0, 0.0]
    if voxels:
        for axis, indices in enumerate(np.nonzero(mask)):
            extents[axis] = (int(indices.max()) - int(indices.min()) + 1) * spacing[axis]
    sphericity = float(np.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / surface) if surface else 0.0
    return {
        "voxels": voxels,
        "volume_ml": volume / 1000.0,
        "surface_mm2": surface,
        "sphericity": sphericity,
        "extent_x_mm": extents[0],
        "extent_y_mm": extents[1],
        "extent_z_mm": extents[2],
    }


def _intensity(values: np.ndarray) -> dict[str, object]:
    if values.size == 0:
        return {
            name: "" for name in ("mean", "std", "median", "p10", "p90", "minimum", "maximum", "skewness", "kurtosis")
        }
    mean, std = float(values.mean()), float(values.std())
    centred = values - mean
    skewness = float(np.mean(centred**3) / std**3) if std else 0.0
    kurtosis = float(np.mean(centred**4) / std**4 - 3.0) if std else 0.0
    p10, median, p90 = (float(v) for v in np.percentile(values, (10, 50, 90)))
    return {
        "mean": mean,
        "std": std,
        "median": median,
        "p10": p10,
        "p90": p90,
        "minimum": float(values.min()),
        "maximum": float(values.max()),
        "skewness": skewness,
        "kurtosis": kurtosis,
    }


def images_in(folder: Path) -> dict[str, Path]:
    """The modality images directly in ``folder``, recognised by the end of their names (``*_t1c.nii.gz``,
    ``*-t2f.nii.gz``, ...): short name (``t1``, ``t1c``, ``t2``, ``flair``) -> file."""
    from btk.io import is_nifti, strip_nifti_suffix
    from btk.modalities import SHORT_NAMES, modality_of_stem

    found = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and is_nifti(p)):
        modality = modality_of_stem(strip_nifti_suffix(path))
        if modality and SHORT_NAMES[modality] not in found:
            found[SHORT_NAMES[modality]] = path
    return found
