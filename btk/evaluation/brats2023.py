"""The BraTS 2023 lesion-wise evaluation, as the official 2023 metrics code computes it.

Per region (WT, TC, ET, from labels numbered as in BraTS 2023):

- *legacy* whole-region Dice (1 when both masks are empty) and HD95 (surface-area weighted, see
  :mod:`btk.evaluation.surface`; 0 when both are empty, :data:`HD95_PENALTY_MM` when one is);
- sensitivity and specificity of the whole region (sensitivity 1 when both are empty);
- *lesion-wise* scores: the reference's 26-connected components, merged when their dilations touch (the
  dilation, with the 18-neighbourhood, repeated a challenge's number of times), are the lesions. Every
  26-connected predicted component that touches a lesion's dilation counts for that lesion; a lesion's Dice
  and HD95 are those of the lesion against all the components counted for it (HD95
  :data:`HD95_PENALTY_MM` when none is). Predicted components that touch no lesion are false positives.
  Lesions of at most a challenge's volume are left out of the scores and counts. The lesion-wise Dice is
  the sum of the lesions' Dice over (lesions + false positives), the lesion-wise HD95 the sum of their HD95
  plus the penalty per false positive over the same count; with neither lesions nor false positives they are
  1 and 0.

Only the box around the masks is ever processed (a lesion with its dilation and the components counted for
it), which gives the same numbers as whole-volume processing, much faster.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np

from btk.errors import InputError
from btk.evaluation.surface import robust_hausdorff, surface_distances
from btk.labels import BRATS_2023, LabelConvention

#: The penalty of an undefined HD95 (a missed lesion, a false positive, one empty whole region), in mm.
HD95_PENALTY_MM = 374.0
#: Per challenge of the 2023 code: (the dilation that merges reference lesions, in iterations; the largest
#: lesion volume left out, in mm^3).
CHALLENGES: dict[str, tuple[int, float]] = {
    "gli": (3, 50.0),
    "ssa": (3, 50.0),
    "men": (1, 50.0),
    "ped": (3, 50.0),
    "met": (1, 2.0),
}
#: The regions the 2023 code evaluates, from the BraTS 2023 labels (1 NCR, 2 ED, 3 ET).
REGIONS = ("WT", "TC", "ET")


@dataclass(frozen=True)
class Brats2023Row:
    """The BraTS 2023 metrics of one region of one case."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "case",
        "region",
        "lesionwise_dice",
        "lesionwise_hd95_mm",
        "legacy_dice",
        "legacy_hd95_mm",
        "num_tp",
        "num_fp",
        "num_fn",
        "sensitivity",
        "specificity",
    )

    case: str
    region: str
    lesionwise_dice: float
    lesionwise_hd95_mm: float
    legacy_dice: float
    legacy_hd95_mm: float
    num_tp: int
    num_fp: int
    num_fn: int
    sensitivity: float
    specificity: float

    @property
    def dice(self) -> float:
        """The whole region's Dice (the legacy one)."""
        return self.legacy_dice

    def as_csv_row(self) -> dict[str, object]:
        """The row by column."""
        return asdict(self)


def check_challenge(challenge: str) -> tuple[int, float]:
    """The settings of a challenge of the 2023 code; an :class:`InputError` listing them otherwise."""
    try:
        return CHALLENGES[challenge]
    except KeyError:
        raise InputError(
            f"the BraTS 2023 metrics have no settings for the {challenge!r} challenge",
            hint=f"use --challenge {', '.join(CHALLENGES)} with --scheme brats2023",
        ) from None


def evaluate_brats2023(
    prediction: np.ndarray,
    reference: np.ndarray,
    prediction_convention: LabelConvention,
    reference_convention: LabelConvention,
    spacing: tuple[float, ...] = (1.0, 1.0, 1.0),
    case: str = "case",
    challenge: str = "gli",
) -> list[Brats2023Row]:
    """The BraTS 2023 metrics of WT, TC and ET for two label maps on one grid, each in its own convention."""
    dilation, smallest = check_challenge(challenge)
    for convention in (prediction_convention, reference_convention):
        if any(_glioma_region(convention, r) != _glioma_region(BRATS_2023, r) for r in REGIONS):
            raise InputError(
                f"the BraTS 2023 metrics evaluate the glioma regions WT, TC and ET, which the {convention.name} "
                "convention lacks",
                hint="use --scheme legacy for this convention",
            )
    rows = []
    for region in REGIONS:
        predicted = prediction_convention.region_mask(prediction, region)
        actual = reference_convention.region_mask(reference, region)
        rows.append(_region_row(case, region, predicted, actual, spacing, dilation, smallest))
    return rows


def _glioma_region(convention: LabelConvention, region: str) -> tuple[str, ...] | None:
    """The tissue classes of ``region`` in ``convention``, or None if it has no such region."""
    return tuple(sorted(convention.region(region).tissues)) if region in convention.region_names else None


def _region_row(
    case: str,
    region: str,
    predicted: np.ndarray,
    actual: np.ndarray,
    spacing: tuple[float, ...],
    dilation: int,
    smallest: float,
) -> Brats2023Row:
    from scipy import ndimage

    components, count = ndimage.label(predicted, structure=_ALL_NEIGHBOURS)
    lesions = _lesions(components, actual, spacing, dilation)
    scored = [lesion for lesion in lesions if lesion.volume > smallest]
    counted = set().union(*(lesion.components for lesion in lesions))
    false_positives = count - len(counted)  # components touching no lesion's dilation (small lesions count too)
    total = len(scored) + false_positives
    lesion_dice = sum(lesion.dice for lesion in scored) / total if total else 1.0
    lesion_hd95 = (sum(lesion.hd95 for lesion in scored) + false_positives * HD95_PENALTY_MM) / total if total else 0.0
    sensitivity, specificity = _sensitivity_specificity(predicted, actual)
    return Brats2023Row(
        case=case,
        region=region,
        lesionwise_dice=float(lesion_dice),
        lesionwise_hd95_mm=float(lesion_hd95),
        legacy_dice=_legacy_dice(predicted, actual),
        legacy_hd95_mm=_legacy_hd95(predicted, actual, spacing),
        num_tp=sum(1 for lesion in scored if lesion.detected),
        num_fp=false_positives,
        num_fn=sum(1 for lesion in scored if not lesion.detected),
        sensitivity=sensitivity,
        specificity=specificity,
    )


#: 26-connectivity.
_ALL_NEIGHBOURS = np.ones((3, 3, 3), bool)


@dataclass(frozen=True)
class _Lesion:
    """One (merged) reference lesion: its volume (mm^3), the predicted components counted for it, its scores."""

    volume: float
    components: frozenset[int]
    dice: float
    hd95: float

    @property
    def detected(self) -> bool:
        return bool(self.components)


def _lesions(components: np.ndarray, actual: np.ndarray, spacing: tuple[float, ...], dilation: int) -> list[_Lesion]:
    """The reference's lesions, merged by dilation, each scored against the predicted components (labelled
    ``components``) that touch its dilation."""
    from scipy import ndimage

    if not actual.any():
        return []
    structure = ndimage.generate_binary_structure(3, 2)
    pieces = ndimage.find_objects(components)
    box = _grown(_box_of(actual), dilation + 1, actual.shape)  # holds the whole dilation
    merged, _ = ndimage.label(
        ndimage.binary_dilation(actual[box], structure=structure, iterations=dilation), structure=_ALL_NEIGHBOURS
    )
    lesions = []
    for label, extent in enumerate(ndimage.find_objects(merged), start=1):
        # a lesion's dilation lies inside its dilated component, so the component's extent holds all of it
        lesion_box = _within(box, extent)
        lesion = (merged[extent] == label) & actual[lesion_box]
        around = ndimage.binary_dilation(lesion, structure=structure, iterations=dilation)
        touched = frozenset(int(c) for c in np.unique(components[lesion_box][around]) if c)
        region = _union(lesion_box, [pieces[c - 1] for c in touched])
        mine = np.zeros([s.stop - s.start for s in region], bool)
        mine[_relative(lesion_box, region)] = lesion
        theirs = np.isin(components[region], list(touched))
        volume = float(np.count_nonzero(lesion)) * float(np.prod(spacing))
        dice = 2.0 * np.count_nonzero(mine & theirs) / (np.count_nonzero(mine) + np.count_nonzero(theirs))
        hd95 = robust_hausdorff(surface_distances(mine, theirs, spacing))
        lesions.append(_Lesion(volume, touched, float(dice), HD95_PENALTY_MM if np.isinf(hd95) else hd95))
    return lesions


def _legacy_dice(predicted: np.ndarray, actual: np.ndarray) -> float:
    total = int(np.count_nonzero(predicted)) + int(np.count_nonzero(actual))
    return 1.0 if total == 0 else 2.0 * int(np.count_nonzero(predicted & actual)) / total


def _legacy_hd95(predicted: np.ndarray, actual: np.ndarray, spacing: tuple[float, ...]) -> float:
    if not predicted.any() and not actual.any():
        return 0.0
    value = robust_hausdorff(surface_distances(actual, predicted, spacing))
    return HD95_PENALTY_MM if np.isinf(value) else value


def _sensitivity_specificity(predicted: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """As the 2023 code computes them (GaNDLF's definition): sensitivity 1 when both regions are empty."""
    true_positive = int(np.count_nonzero(predicted & actual))
    predicted_count, actual_count = int(np.count_nonzero(predicted)), int(np.count_nonzero(actual))
    true_negative = int(np.count_nonzero(~predicted & ~actual))
    false_positive = predicted_count - true_positive
    false_negative = actual_count - true_positive
    tiny = np.finfo(float).tiny
    sensitivity = (
        1.0 if predicted_count == 0 and actual_count == 0 else true_positive / (true_positive + false_negative + tiny)
    )
    return float(sensitivity), float(true_negative / (true_negative + false_positive + tiny))


def _box_of(mask: np.ndarray) -> tuple[slice, ...]:
    return tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(mask))


def _grown(box: tuple[slice, ...], margin: int, shape: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(max(s.start - margin, 0), min(s.stop + margin, n)) for s, n in zip(box, shape))


def _within(outer: tuple[slice, ...], inner: tuple[slice, ...]) -> tuple[slice, ...]:
    """``inner`` (relative to ``outer``) in the coordinates of the whole volume."""
    return tuple(slice(o.start + i.start, o.start + i.stop) for o, i in zip(outer, inner))


def _relative(box: tuple[slice, ...], outer: tuple[slice, ...]) -> tuple[slice, ...]:
    return tuple(slice(b.start - o.start, b.stop - o.start) for b, o in zip(box, outer))


def _union(box: tuple[slice, ...], others: list[tuple[slice, ...]]) -> tuple[slice, ...]:
    boxes = [box, *others]
    return tuple(slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes)) for a in range(len(box)))
