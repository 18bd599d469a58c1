"""The BraTS 2025 evaluation, as the official evaluator computes it (PyPI ``brats-evaluation`` 0.0.10, built
on panoptica 2.1.7): the same numbers, from btk's own code (numpy and scipy only).

Each challenge's configuration names *regions* (label groups: ``wt``, ``tc``, ``et`` ... with the raw label
values they are made of). Per region of a case:

- **instances**: the 26-connected components of the region in each map. Reference and predicted instances
  are paired one to one by a maximum bipartite matching on their Dice (``scipy``'s linear sum assignment on
  the cost ``1 - Dice`` for pairs with a Dice of at least 1e-6, ``1 + 1e-6`` otherwise); every pair with a
  positive Dice is a true positive. ``instance_fp`` and ``instance_fn`` are the unpaired predicted and
  reference instances, ``instance_f1`` is ``tp / (tp + (fp + fn) / 2)`` (0 without a true positive, NaN
  when neither map has an instance).
- **lesion-wise** scores: the mean over the true positives of each pair's Dice, normalised surface Dice
  (NSD) and HD95, in mm. Without a true positive they are 0, 0 and infinity, or NaN when neither map has
  an instance. The HD95 is *not* capped.
- **global** scores: the Dice, NSD and HD95 of the whole region. Without a voxel in common they are 0, 0
  and :data:`HD95_PENALTY_MM` (NaN, NaN, NaN when both maps lack the region).

The surface distances are panoptica's: the border of a mask is its voxels that a 6-connected erosion
removes; each border voxel's distance to the other border (Euclidean distance transform) is measured in
both directions. The HD95 is the 95th percentile (linear interpolation) of both directions' distances
pooled; the NSD at tolerance ``t`` is the fraction of both borders within ``t`` of the other.

Three properties of the official tool are reproduced on purpose, as they change its numbers:

- the *global* NSD and HD95 ignore the voxel spacing: distances in voxels, NSD tolerance 0.5 voxel (only
  border voxels shared by both masks count);
- the lesion-wise NSD tolerance is the smallest voxel spacing;
- the official tool reads the files with SimpleITK, whose arrays are indexed (z, y, x) while it applies
  the spacing in (x, y, z) order: the lesion-wise distances of an anisotropic image use the spacing of the
  x axis along z and vice versa. btk evaluates the same (z, y, x) view of the maps (which also numbers the
  instances in the official order). On isotropic images, such as BraTS's 1 mm grid, none of this shows.

**Metastases** (``--challenge met``) are scored as the official parser's metastases variant
(``metrics_parser.parse_mets_results``, :class:`MetsThresholds`): reference lesions of at least a volume
(20 mm³) are *large*, the others *small*. The lesion-wise means are over the large lesions only (a matched
one with its pair's scores; a missed one, and every false-positive instance, with 0, 0 and
:data:`HD95_PENALTY_MM`), NaN without a large reference lesion. Detection is counted apart for large and
small lesions: a reference lesion is detected when it is matched with a Dice of at least the overlap
threshold (0.1); the false positives are all unmatched predicted instances, for both. F1 is
``2 tp / (2 tp + fp + fn)`` (0 when that is 0/0), NaN when the reference has no lesion of that size.

The label values are the configuration's (the official tool reads raw values): a map is read in the
challenge's numbering unless its convention is named, in which case it is converted class by class first
(a ``brats2021`` map's 4 becomes ET's 3 for gliomas); values the configuration does not define are refused.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from btk.arrays import bounding_box
from btk.console import logger
from btk.errors import InputError
from btk.labels import (
    BRATS_2023,
    BRATS_2024_MEN_RT,
    BRATS_2024_PED,
    BRATS_2024_POST,
    LabelConvention,
    convert,
    values_present,
)

#: The official parser's global HD95 when it is infinite (the diagonal of the SRI-24 cube, in mm).
HD95_PENALTY_MM = 373.0
#: The official matcher's smallest Dice for a pair to be matched.
MATCHING_THRESHOLD = 1e-6
#: The global NSD's tolerance, in voxels (the official global metrics get no voxel spacing).
GLOBAL_NSD_TOLERANCE = 0.5


@dataclass(frozen=True)
class Challenge:
    """One of the official tool's bundled configurations.

    Attributes:
        config: The configuration's name in ``brats-evaluation`` (``config_<config>.yaml``).
        convention: The btk convention numbered as the configuration's labels.
        regions: Region name -> the raw label values it is made of, in the order rows are written.
    """

    config: str
    convention: LabelConvention
    regions: tuple[tuple[str, tuple[int, ...]], ...]
    by_lesion_size: bool = False

    @property
    def labels(self) -> tuple[int, ...]:
        """Every label value the configuration defines, ascending."""
        return tuple(sorted({value for _, values in self.regions for value in values}))


_GLIOMA = (("wt", (1, 2, 3)), ("tc", (1, 3)), ("et", (3,)))
#: btk's challenge names -> the official configurations.
CHALLENGES: dict[str, Challenge] = {
    "gli": Challenge("gli", BRATS_2024_POST, (*_GLIOMA, ("netc", (1,)), ("snfh", (2,)), ("rc", (4,)))),
    "ped": Challenge(
        "ped",
        BRATS_2024_PED,
        (("wt", (1, 2, 3, 4)), ("tc", (1, 2, 3)), ("et", (1,)), ("netc", (2,)), ("cc", (3,)), ("ed", (4,))),
    ),
    "men": Challenge("MenPre", BRATS_2023, _GLIOMA),
    "men-rt": Challenge("MenRT", BRATS_2024_MEN_RT, (("gtv", (1,)),)),
    "met": Challenge("mets", BRATS_2024_POST, (*_GLIOMA, ("rc", (4,))), by_lesion_size=True),
    "goat": Challenge("GoAT", BRATS_2023, _GLIOMA),
}


@dataclass(frozen=True)
class Brats2025Row:
    """The BraTS 2025 metrics of one region of one case (the official parser's per-case values)."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "case",
        "region",
        "global_dsc",
        "global_nsd",
        "global_hd95_mm",
        "lesionwise_dsc_mean",
        "lesionwise_hd95_mean_mm",
        "lesionwise_nsd_mean",
        "instance_tp",
        "instance_fp",
        "instance_fn",
        "instance_f1",
    )

    case: str
    region: str
    global_dsc: float
    global_nsd: float
    global_hd95_mm: float
    lesionwise_dsc_mean: float
    lesionwise_hd95_mean_mm: float
    lesionwise_nsd_mean: float
    instance_tp: int
    instance_fp: int
    instance_fn: int
    instance_f1: float

    @property
    def dice(self) -> float:
        """The whole region's Dice."""
        return self.global_dsc

    def as_csv_row(self) -> dict[str, object]:
        """The row by column."""
        return asdict(self)


@dataclass(frozen=True)
class LesionSizeDetection:
    """The metastases variant's detection of large and small reference lesions apart (see the module): counts
    and F1 per size, NaN where the reference has no lesion of that size."""

    large_instance_tp: float
    large_instance_fp: float
    large_instance_fn: float
    large_instance_f1: float
    small_instance_tp: float
    small_instance_fp: float
    small_instance_fn: float
    small_instance_f1: float


@dataclass(frozen=True)
class Brats2025MetsRow(Brats2025Row, LesionSizeDetection):
    """The metastases variant's metrics of one region of one case: the lesion-wise means are the large
    lesions' (see the module), and detection is counted for large and small reference lesions apart."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        *Brats2025Row.COLUMNS,
        "large_instance_tp",
        "large_instance_fp",
        "large_instance_fn",
        "large_instance_f1",
        "small_instance_tp",
        "small_instance_fp",
        "small_instance_fn",
        "small_instance_f1",
    )


@dataclass(frozen=True)
class MetsThresholds:
    """The metastases variant's thresholds (the official parser's defaults).

    Attributes:
        volume_mm3: Reference lesions of at least this volume are large, the others small.
        overlap: The smallest Dice of a matched reference lesion for it to count as detected.

    Raises:
        InputError: For a negative or non-finite volume, or an overlap outside [0, 1].
    """

    volume_mm3: float = 20.0
    overlap: float = 0.1

    def __post_init__(self) -> None:
        if not (np.isfinite(self.volume_mm3) and self.volume_mm3 >= 0):
            raise InputError(
                f"the metastases volume threshold must be a volume in mm³ of at least 0, not {self.volume_mm3}",
                hint="e.g. --mets-volume-threshold 20 (the official default)",
            )
        if not (np.isfinite(self.overlap) and 0 <= self.overlap <= 1):
            raise InputError(
                f"the metastases overlap threshold must be a Dice between 0 and 1, not {self.overlap}",
                hint="e.g. --mets-overlap-threshold 0.1 (the official default)",
            )


def check_challenge(challenge: str) -> Challenge:
    """The official configuration of a btk challenge name; an :class:`InputError` listing them otherwise."""
    try:
        return CHALLENGES[challenge]
    except KeyError:
        raise InputError(
            f"the BraTS 2025 evaluation has no configuration for the {challenge!r} challenge",
            hint=f"use --challenge {', '.join(CHALLENGES)} with --scheme brats2025",
        ) from None


def evaluate_brats2025(
    prediction: np.ndarray,
    reference: np.ndarray,
    spacing: tuple[float, ...] = (1.0, 1.0, 1.0),
    case: str = "case",
    challenge: str = "gli",
    prediction_convention: LabelConvention | None = None,
    reference_convention: LabelConvention | None = None,
    mets_thresholds: MetsThresholds | None = None,
) -> list[Brats2025Row]:
    """The BraTS 2025 metrics of every region of a challenge for two label maps on one grid.

    Args:
        prediction, reference: Label maps indexed (x, y, z), as nibabel reads them.
        spacing: The voxel spacing in mm, (x, y, z), as in the NIfTI header.
        case: The case's name, written in the rows.
        challenge: A key of :data:`CHALLENGES`.
        prediction_convention, reference_convention: The convention of each map, converted to the
            challenge's numbering; None reads its values as the challenge's own.
        mets_thresholds: The metastases variant's thresholds (``met`` only; default: the official ones).
            Its rows are :class:`Brats2025MetsRow`.

    Raises:
        InputError: For an unknown challenge, different shapes, or labels the configuration lacks.
    """
    settings = check_challenge(challenge)
    if np.shape(prediction) != np.shape(reference):
        raise InputError(f"prediction shape {np.shape(prediction)} differs from reference shape {np.shape(reference)}")
    maps = [
        _in_challenge_numbering(array, convention, settings, role)
        for array, convention, role in (
            (prediction, prediction_convention, "prediction"),
            (reference, reference_convention, "reference"),
        )
    ]
    # the official tool's (z, y, x) view, with the spacing still in (x, y, z) order (see the module)
    predicted, actual = (array.T for array in maps)
    # only the box around both maps' labels matters (a voxel to spare keeps every border and distance)
    box = bounding_box((predicted > 0) | (actual > 0), margin=1)
    predicted, actual = predicted[box], actual[box]
    sampling = tuple(float(s) for s in spacing)
    if mets_thresholds is not None and not settings.by_lesion_size:
        raise InputError(
            f"the metastases thresholds apply to the met challenge only, not to {challenge!r}",
            hint="drop --mets-volume-threshold / --mets-overlap-threshold, or use --challenge met",
        )
    rows: list[Brats2025Row] = []
    for region, values in settings.regions:
        lesions = region_lesions(np.isin(predicted, values), np.isin(actual, values), sampling)
        if settings.by_lesion_size:
            rows.append(
                Brats2025MetsRow(
                    case=case, region=region, **asdict(lesions.mets_scores(mets_thresholds or MetsThresholds()))
                )
            )
        else:
            rows.append(Brats2025Row(case, region, **asdict(lesions.scores())))
    return rows


def region_masks(
    challenge: str, prediction_convention: LabelConvention | None, reference_convention: LabelConvention | None
) -> Callable[[np.ndarray, str], dict[str, np.ndarray]]:
    """Region masks of maps as this scheme reads them (``role``: ``"prediction"`` or ``"reference"``), for the
    cohort report (:mod:`btk.evaluation.cohort`)."""
    settings = check_challenge(challenge)

    def masks(array: np.ndarray, role: str) -> dict[str, np.ndarray]:
        convention = prediction_convention if role == "prediction" else reference_convention
        numbered = _in_challenge_numbering(array, convention, settings, role)
        return {region: np.isin(numbered, values) for region, values in settings.regions}

    return masks


def _in_challenge_numbering(
    array: np.ndarray, convention: LabelConvention | None, challenge: Challenge, role: str
) -> np.ndarray:
    """The map in the challenge's label values: converted from its named convention, checked otherwise."""
    if convention is not None and convention.name != challenge.convention.name:
        return convert(array, convention, challenge.convention)
    present = values_present(array)
    if convention is None and challenge.convention is BRATS_2024_POST and 4 in present and 3 not in present:
        logger.warning(
            "The %s holds label 4 but no 3: it is read as a resection cavity (BraTS 2024+ numbering); if it is "
            "numbered as in BraTS 2017-2021 (4 = enhancing tumour), pass --%s-labels brats2021",
            role,
            "pred" if role == "prediction" else "ref",
        )
    undefined = sorted(present - {0, *challenge.labels})
    if undefined:
        shown = ", ".join(str(int(v)) if float(v).is_integer() else str(v) for v in undefined[:10])
        raise InputError(
            f"the {role} holds label values {shown}, which the BraTS 2025 {challenge.config} configuration does "
            f"not define (labels {', '.join(map(str, challenge.labels))}, as in {challenge.convention.name})",
            hint="name the map's convention with --pred-labels / --ref-labels (e.g. brats2021) to convert it, "
            "or pick the right --challenge",
        )
    return np.asarray(array)


@dataclass(frozen=True)
class RegionScores:
    """The metrics of one region (see the module's documentation)."""

    global_dsc: float
    global_nsd: float
    global_hd95_mm: float
    lesionwise_dsc_mean: float
    lesionwise_hd95_mean_mm: float
    lesionwise_nsd_mean: float
    instance_tp: int
    instance_fp: int
    instance_fn: int
    instance_f1: float


@dataclass(frozen=True)
class MetsRegionScores(RegionScores, LesionSizeDetection):
    """The metastases variant's metrics of one region (see the module's documentation); NaN counts where
    the reference has no lesion of that size."""


@dataclass(frozen=True)
class ReferenceLesion:
    """One reference instance: its volume and, when matched, its pair's Dice, NSD and HD95 (mm)."""

    volume_mm3: float
    scores: tuple[float, float, float] | None


@dataclass(frozen=True)
class RegionLesions:
    """What the official evaluator finds in one region: every reference instance, the number of predicted
    instances, and the whole region's Dice, NSD and HD95 (voxels)."""

    reference: tuple[ReferenceLesion, ...]
    n_predicted: int
    global_scores: tuple[float, float, float]

    @property
    def tp(self) -> int:
        """The matched reference instances."""
        return sum(lesion.scores is not None for lesion in self.reference)

    def scores(self) -> RegionScores:
        """The metrics as the official parser's ``parse_seg_results`` reports them."""
        matched = [lesion.scores for lesion in self.reference if lesion.scores is not None]
        tp, fp, fn = self.tp, self.n_predicted - self.tp, len(self.reference) - self.tp
        lesionwise = (
            [float(np.average(column)) for column in zip(*matched)]
            if matched
            else _zero_tp(self.n_predicted, len(self.reference))
        )
        global_dsc, global_nsd, global_hd95 = self.global_scores
        return RegionScores(
            global_dsc=global_dsc,
            global_nsd=global_nsd,
            global_hd95_mm=HD95_PENALTY_MM if np.isinf(global_hd95) else global_hd95,
            lesionwise_dsc_mean=lesionwise[0],
            lesionwise_hd95_mean_mm=lesionwise[2],
            lesionwise_nsd_mean=lesionwise[1],
            instance_tp=tp,
            instance_fp=fp,
            instance_fn=fn,
            instance_f1=_f1(tp, fp, fn),
        )

    def mets_scores(self, thresholds: MetsThresholds) -> MetsRegionScores:
        """The metrics as the official parser's ``parse_mets_results`` reports them."""
        common = asdict(self.scores())
        fp = self.n_predicted - self.tp
        large = [lesion for lesion in self.reference if lesion.volume_mm3 >= thresholds.volume_mm3]
        small = [lesion for lesion in self.reference if lesion.volume_mm3 < thresholds.volume_mm3]
        if large:
            # a missed large lesion and every false positive count with the worst scores
            worst = (0.0, 0.0, HD95_PENALTY_MM)
            scored = [lesion.scores or worst for lesion in large] + [worst] * fp
            dsc, nsd, hd95 = (float(np.mean(column)) for column in zip(*scored))
            common.update(lesionwise_dsc_mean=dsc, lesionwise_nsd_mean=nsd, lesionwise_hd95_mean_mm=hd95)
        else:
            common.update({f"lesionwise_{m}": float("nan") for m in ("dsc_mean", "nsd_mean", "hd95_mean_mm")})
        return MetsRegionScores(
            **common,
            **_detection("large", large, fp, thresholds.overlap),
            **_detection("small", small, fp, thresholds.overlap),
        )


def _detection(size: str, lesions: list[ReferenceLesion], fp: int, overlap: float) -> dict[str, Any]:
    """Detection counts and F1 of the reference lesions of one size (NaN without any)."""
    names = [f"{size}_instance_{m}" for m in ("tp", "fp", "fn", "f1")]
    if not lesions:
        return dict.fromkeys(names, float("nan"))
    tp = sum(lesion.scores is not None and lesion.scores[0] >= overlap for lesion in lesions)
    fn = len(lesions) - tp
    f1 = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0.0
    return dict(zip(names, (tp, fp, fn, f1)))


def region_scores(
    predicted: np.ndarray, actual: np.ndarray, sampling: tuple[float, ...] = (1.0, 1.0, 1.0)
) -> RegionScores:
    """The BraTS 2025 metrics of two boolean masks of one region, on arrays in the official (z, y, x) view.

    ``sampling`` is the spacing per array axis used for the lesion-wise distances (the global ones use none).
    """
    return region_lesions(predicted, actual, sampling).scores()


def region_lesions(
    predicted: np.ndarray, actual: np.ndarray, sampling: tuple[float, ...] = (1.0, 1.0, 1.0)
) -> RegionLesions:
    """The instances of two boolean masks of one region, matched and scored, on arrays in the official
    (z, y, x) view (``sampling``: the spacing per array axis of the lesion-wise distances)."""
    box = bounding_box(predicted | actual, margin=1)
    predicted, actual = predicted[box], actual[box]
    predicted_instances, n_predicted = _instances(predicted)
    actual_instances, n_actual = _instances(actual)
    pairs = _matched_pairs(predicted_instances, n_predicted, actual_instances, n_actual)
    scores = {
        r: _pair_scores(actual_instances[around] == r, predicted_instances[around] == p, sampling)
        for r, p, around in _pair_boxes(actual_instances, predicted_instances, pairs)
    }
    voxels = np.bincount(actual_instances.ravel(), minlength=n_actual + 1)
    voxel_volume = float(np.prod(sampling))
    reference = tuple(ReferenceLesion(float(voxels[r]) * voxel_volume, scores.get(r)) for r in range(1, n_actual + 1))
    return RegionLesions(reference, n_predicted, _global_scores(predicted, actual, n_predicted, n_actual))


def _f1(tp: int, fp: int, fn: int) -> float:
    """The recognition quality: 0 without a true positive, NaN without any instance."""
    if tp == 0:
        return 0.0 if fp + fn > 0 else float("nan")
    return tp / (tp + 0.5 * fp + 0.5 * fn)


def _zero_tp(n_predicted: int, n_actual: int) -> list[float]:
    """Dice, NSD and HD95 without a true positive: NaN without any instance, else 0, 0 and infinity."""
    if n_predicted + n_actual == 0:
        return [float("nan")] * 3
    return [0.0, 0.0, float("inf")]


#: 26-connectivity, the official connected components' (cc3d) for 3-D maps.
_ALL_NEIGHBOURS = np.ones((3, 3, 3), bool)


def _instances(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The 26-connected components of a 3-D mask, numbered by their first voxel in C order, and their count."""
    from scipy import ndimage

    if not mask.any():
        return np.zeros(mask.shape, np.int32), 0
    structure = _ALL_NEIGHBOURS if mask.ndim == 3 else ndimage.generate_binary_structure(mask.ndim, 1)
    labels, count = ndimage.label(mask, structure=structure)
    return labels, int(count)


def _matched_pairs(predicted: np.ndarray, n_predicted: int, actual: np.ndarray, n_actual: int) -> list[tuple[int, int]]:
    """The (reference, prediction) instance pairs of the maximum bipartite matching on Dice, by reference."""
    from scipy.optimize import linear_sum_assignment

    if n_predicted == 0 or n_actual == 0:
        return []
    both = (actual > 0) & (predicted > 0)
    if not both.any():
        return []
    code = actual[both].astype(np.int64) * (n_predicted + 1) + predicted[both]
    codes, overlaps = np.unique(code, return_counts=True)
    refs, preds = codes // (n_predicted + 1), codes % (n_predicted + 1)
    actual_sizes = np.bincount(actual.ravel(), minlength=n_actual + 1).astype(np.float64)
    predicted_sizes = np.bincount(predicted.ravel(), minlength=n_predicted + 1).astype(np.float64)
    dice = 2.0 * overlaps.astype(np.float64) / (actual_sizes[refs] + predicted_sizes[preds])
    cost = np.ones((n_actual, n_predicted)) * (1.0 + 1e-6)
    kept = dice >= MATCHING_THRESHOLD
    cost[refs[kept] - 1, preds[kept] - 1] = 1.0 - dice[kept]
    rows, columns = linear_sum_assignment(cost)
    return sorted((int(r) + 1, int(c) + 1) for r, c in zip(rows, columns) if cost[r, c] < 1.0)


def _pair_boxes(
    actual: np.ndarray, predicted: np.ndarray, pairs: list[tuple[int, int]]
) -> list[tuple[int, int, tuple[slice, ...]]]:
    """Each pair with the box around both its instances, one voxel wider where the array allows."""
    from scipy import ndimage

    actual_boxes, predicted_boxes = ndimage.find_objects(actual), ndimage.find_objects(predicted)
    boxed = []
    for r, p in pairs:
        a, b = actual_boxes[r - 1], predicted_boxes[p - 1]
        box = tuple(
            slice(max(min(s.start, t.start) - 1, 0), min(max(s.stop, t.stop) + 1, n))
            for s, t, n in zip(a, b, actual.shape)
        )
        boxed.append((r, p, box))
    return boxed


def _pair_scores(actual: np.ndarray, predicted: np.ndarray, sampling: tuple[float, ...]) -> tuple[float, float, float]:
    """Dice, NSD (tolerance: the smallest spacing) and HD95 (mm) of one matched instance pair, each a mask
    in a box that holds both with a voxel to spare (or the image's edge)."""
    dice = _dice(actual, predicted)
    from_actual, from_predicted = border_distances(actual, predicted, sampling)
    return dice, _nsd(from_actual, from_predicted, min(sampling)), _hd95(from_actual, from_predicted)


def _global_scores(
    predicted: np.ndarray, actual: np.ndarray, n_predicted: int, n_actual: int
) -> tuple[float, float, float]:
    """The whole region's Dice, NSD and HD95, distances in voxels (the official global metrics' way)."""
    if not (predicted & actual).any():
        dice, nsd, hd95 = _zero_tp(n_predicted, n_actual)
        return dice, nsd, hd95
    from_actual, from_predicted = border_distances(actual, predicted)
    return (
        _dice(actual, predicted),
        _nsd(from_actual, from_predicted, GLOBAL_NSD_TOLERANCE),
        _hd95(from_actual, from_predicted),
    )


def _dice(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(2 * np.count_nonzero(actual & predicted) / (np.count_nonzero(actual) + np.count_nonzero(predicted)))


def border_distances(
    actual: np.ndarray, predicted: np.ndarray, sampling: tuple[float, ...] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm, or voxels without ``sampling``) from each border voxel of each non-empty mask to the
    other's border: (from the reference's border, from the prediction's border).

    The border is what a 6-connected erosion removes (the array's edge counts as outside); the masks must
    not touch the array's edge unless the image ends there.
    """
    from scipy import ndimage

    cross = ndimage.generate_binary_structure(actual.ndim, 1)
    borders = [mask ^ ndimage.binary_erosion(mask, structure=cross) for mask in (actual, predicted)]
    to_actual = ndimage.distance_transform_edt(~borders[0], sampling=sampling)
    to_predicted = ndimage.distance_transform_edt(~borders[1], sampling=sampling)
    return to_predicted[borders[0]], to_actual[borders[1]]


def _hd95(from_actual: np.ndarray, from_predicted: np.ndarray) -> float:
    """The 95th percentile of both directions' distances pooled."""
    return float(np.percentile(np.hstack((from_actual, from_predicted)), 95))


def _nsd(from_actual: np.ndarray, from_predicted: np.ndarray, tolerance: float) -> float:
    """The mean of the two borders' fractions of voxels within ``tolerance`` of the other border."""
    near_actual = np.sum(from_actual <= tolerance) / from_actual.size
    near_predicted = np.sum(from_predicted <= tolerance) / from_predicted.size
    far_actual = np.sum(from_actual > tolerance) / from_actual.size
    far_predicted = np.sum(from_predicted > tolerance) / from_predicted.size
    total = near_actual + near_predicted + far_actual + far_predicted + sys.float_info.min
    return float((near_actual + near_predicted) / total)
