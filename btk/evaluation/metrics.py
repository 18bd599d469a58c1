"""Overlap and distance metrics between two binary masks, with the BraTS rules for empty regions.

* Dice: 2|P∩R| / (|P|+|R|); both empty -> 1, one empty -> 0.
* HD95 (:func:`hd95`, btk's ``voxel`` definition): the 95th percentile Hausdorff distance in millimetres,
  computed on the surfaces (boundary voxels, 6-connectivity) of both masks with the voxel spacing:
  max(p95 of distances from P's surface voxels to R's, p95 of distances from R's to P's), every surface
  voxel counting the same. Both empty -> 0; exactly one empty -> a penalty: the diagonal of the atlas
  space's volume the masks lie in (:func:`empty_hd95_penalty_mm`; :data:`HD95_EMPTY_PENALTY_MM` on the BraTS
  SRI24 grid).
  The official definitions differ: the BraTS 2023 code weights each surface element by its area
  (:mod:`btk.evaluation.surface`; the ``surface-area`` definition here, with btk's penalty above; the
  ``brats2023`` scheme uses that code's 374 mm), and the 2025 evaluator (panoptica) takes the percentile of
  both directions' distances pooled.
* Sensitivity |P∩R|/|R| (1 when R is empty), specificity |¬P∩¬R|/|¬R| (1 when ¬R is empty).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from btk.arrays import bounding_box
from btk.evaluation.nearest import nearest_distance_percentile, nearest_distance_percentiles
from btk.spaces import DEFAULT_SPACE, SPACES

#: HD95 when exactly one of the two masks is empty on the BraTS SRI24 grid (and on grids of no atlas space):
#: the diagonal of the 240 x 240 x 155 mm BraTS volume, the penalty of the BraTS 2023 evaluation.
HD95_EMPTY_PENALTY_MM: float = float(np.sqrt(240.0**2 + 240.0**2 + 155.0**2))


def empty_hd95_penalty_mm(shape: tuple[int, ...], spacing: tuple[float, ...] = (1.0, 1.0, 1.0)) -> float:
    """The HD95 of an empty mask against a non-empty one: the diagonal of the volume of the atlas space whose
    grid has this ``shape`` and ``spacing`` (MNI152: 337.3 mm), else of the BraTS SRI24 volume (374.2 mm)."""
    for space in SPACES.values():
        grid = space.grid
        if tuple(shape[:3]) == grid.shape and np.allclose(spacing[:3], np.linalg.norm(grid.affine[:3, :3], axis=0)):
            return float(np.linalg.norm(grid.extent_mm))
    return float(np.linalg.norm(SPACES[DEFAULT_SPACE].grid.extent_mm))


@dataclass(frozen=True)
class RegionMetrics:
    """Metrics of one predicted region against its reference."""

    dice: float
    hd95_mm: float
    sensitivity: float
    specificity: float
    volume_pred_ml: float
    volume_ref_ml: float


def dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Dice coefficient of two boolean masks; two empty masks agree perfectly (1.0)."""
    total = int(np.count_nonzero(prediction)) + int(np.count_nonzero(reference))
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(prediction & reference)) / total


def hd95(
    prediction: np.ndarray,
    reference: np.ndarray,
    spacing: tuple[float, ...] = (1.0, 1.0, 1.0),
    empty_penalty_mm: float = HD95_EMPTY_PENALTY_MM,
) -> float:
    """Symmetric 95th-percentile Hausdorff distance between the surfaces of two masks, in mm
    (``empty_penalty_mm`` when exactly one is empty; see :func:`empty_hd95_penalty_mm`)."""
    return hd95_against(reference, [prediction], spacing, empty_penalty_mm)[0]


def hd95_against(
    reference: np.ndarray,
    predictions: Sequence[np.ndarray],
    spacing: tuple[float, ...] = (1.0, 1.0, 1.0),
    empty_penalty_mm: float = HD95_EMPTY_PENALTY_MM,
) -> list[float]:
    """:func:`hd95` of each prediction against one reference, as the agreement report needs it: the distances
    from the predictions' surfaces to the reference's are measured once for all of them (their union)."""
    predictions = [np.asarray(prediction, dtype=bool) for prediction in predictions]
    reference = np.asarray(reference, dtype=bool)
    present = [bool(prediction.any()) for prediction in predictions]
    if not reference.any():
        return [empty_penalty_mm if has else 0.0 for has in present]
    measured = [prediction for prediction, has in zip(predictions, present) if has]
    if not measured:
        return [empty_penalty_mm] * len(predictions)
    box = bounding_box(np.logical_or.reduce([reference, *measured]), margin=1)  # surface distances never leave it
    surface_reference = surface_voxels(reference[box])
    surfaces = [surface_voxels(prediction[box]) for prediction in measured]
    reference_points = np.argwhere(surface_reference)
    forward = _percentiles_to(surface_reference, surfaces, spacing)
    backward = [nearest_distance_percentile(reference_points, surface, spacing, 95) for surface in surfaces]
    scores = iter(map(max, forward, backward))
    return [next(scores) if has else empty_penalty_mm for has in present]


def _percentiles_to(targets: np.ndarray, surfaces: list[np.ndarray], spacing: tuple[float, ...]) -> list[float]:
    """The 95th percentile of the distances from each surface's voxels to ``targets``, the voxels of several
    surfaces measured once (their union)."""
    union = np.logical_or.reduce(surfaces)
    points = np.argwhere(union)
    groups = np.stack([surface[union] for surface in surfaces])
    return nearest_distance_percentiles(points, groups, targets, spacing, 95)


#: The HD95 definitions :func:`region_metrics` offers: btk's, and the BraTS 2023 code's (surface-area weighted).
HD95_DEFINITIONS = ("voxel", "surface-area")


def region_metrics(
    prediction: np.ndarray,
    reference: np.ndarray,
    spacing: tuple[float, ...] = (1.0, 1.0, 1.0),
    hd95_definition: str = "voxel",
    empty_penalty_mm: float = HD95_EMPTY_PENALTY_MM,
) -> RegionMetrics:
    """All metrics of one region; ``prediction`` and ``reference`` are boolean masks on the same grid.

    ``hd95_definition``: ``"voxel"`` (:func:`hd95`) or ``"surface-area"`` (the BraTS 2023 code's distances,
    :func:`btk.evaluation.surface.robust_hausdorff`); either way an empty mask against a non-empty one
    scores ``empty_penalty_mm`` (:func:`empty_hd95_penalty_mm` of the grid; by default the BraTS SRI24 one).
    """
    prediction, reference = np.asarray(prediction, dtype=bool), np.asarray(reference, dtype=bool)
    true_positive = int(np.count_nonzero(prediction & reference))
    positives = int(np.count_nonzero(reference))
    negatives = reference.size - positives
    true_negative = negatives - (int(np.count_nonzero(prediction)) - true_positive)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    return RegionMetrics(
        dice=dice(prediction, reference),
        hd95_mm=_hd95(prediction, reference, spacing, hd95_definition, empty_penalty_mm),
        sensitivity=true_positive / positives if positives else 1.0,
        specificity=true_negative / negatives if negatives else 1.0,
        volume_pred_ml=int(np.count_nonzero(prediction)) * voxel_ml,
        volume_ref_ml=positives * voxel_ml,
    )


def _hd95(
    prediction: np.ndarray, reference: np.ndarray, spacing: tuple[float, ...], definition: str, penalty_mm: float
) -> float:
    if definition == "voxel":
        return hd95(prediction, reference, spacing, penalty_mm)
    if definition != "surface-area":
        raise ValueError(f"unknown HD95 definition {definition!r}; use one of {', '.join(HD95_DEFINITIONS)}")
    if not prediction.any() or not reference.any():
        return 0.0 if not prediction.any() and not reference.any() else penalty_mm
    from btk.evaluation.surface import robust_hausdorff, surface_distances

    return robust_hausdorff(surface_distances(reference, prediction, spacing))


def surface_voxels(mask: np.ndarray) -> np.ndarray:
    """Voxels of the mask that touch the background (6-connectivity); the image border counts as background."""
    mask = np.asarray(mask, dtype=bool)
    interior = mask.copy()
    for axis in range(mask.ndim):  # a voxel is inside when both its neighbours along every axis are
        head: tuple[slice, ...] = (slice(None),) * axis
        interior[head + (slice(1, None),)] &= mask[head + (slice(None, -1),)]
        interior[head + (slice(None, -1),)] &= mask[head + (slice(1, None),)]
        interior[head + (0,)] = interior[head + (-1,)] = False
    return mask & ~interior
