"""Surface distances with each surface element weighted by its area: the HD95 of the BraTS 2023 evaluation.

The surface of a mask is made of 2x2x2 neighbourhoods of voxels that are neither all inside nor all outside.
Each such border element sits at a corner of the voxel grid and carries the area of the marching-cubes
surface through its neighbourhood (``btk/data/surfel_normals.json``, made by ``tools/surfel_normals.py``);
distances are measured between border elements of the two masks (Euclidean distance transform, in mm).
The robust Hausdorff distance at ``p`` percent is, in each direction, the distance below which ``p`` percent
of the surface area lies; the larger of the two directions is returned. This is the definition of DeepMind's
``surface-distance`` package (``compute_surface_distances`` and ``compute_robust_hausdorff``), which the
official BraTS 2023 metrics use; ``tests/test_evaluation_brats2023.py`` checks the equality.

It differs from :func:`btk.evaluation.metrics.hd95`, which takes the 95th percentile of voxel-centre
distances without weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

#: Bit weights of the eight voxels of a 2x2x2 neighbourhood (offsets (0,0,0) ... (1,1,1)).
NEIGHBOURHOOD_WEIGHTS = np.array([[[128, 64], [32, 16]], [[8, 4], [2, 1]]], dtype=np.uint8)


@dataclass(frozen=True)
class SurfaceDistances:
    """Distances from every border element of one mask to the other mask's surface, with the elements'
    areas, sorted by (distance, area); empty for an empty mask."""

    reference_to_prediction: np.ndarray
    reference_areas: np.ndarray
    prediction_to_reference: np.ndarray
    prediction_areas: np.ndarray


def surface_distances(
    reference: np.ndarray, prediction: np.ndarray, spacing: tuple[float, ...] = (1.0, 1.0, 1.0)
) -> SurfaceDistances:
    """The area-weighted surface distances between two 3-D boolean masks (spacing in mm per axis).

    Only the box around both masks (with one empty plane after it on each axis) is looked at; a mask
    without voxels has no border elements, and the distances from the other one's are then infinite.
    """
    reference, prediction = np.asarray(reference, bool), np.asarray(prediction, bool)
    either = reference | prediction
    if not either.any():
        empty = np.zeros(0)
        return SurfaceDistances(empty, empty, empty, empty)
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(either))
    borders, areas, maps = [], [], []
    for mask in (reference, prediction):
        cropped = np.zeros([s.stop - s.start + 1 for s in box], np.uint8)
        cropped[tuple(slice(0, s.stop - s.start) for s in box)] = mask[box]
        codes = _neighbourhood_codes(cropped)
        border = (codes != 0) & (codes != 255)
        borders.append(border)
        areas.append(_area_table(tuple(float(s) for s in spacing))[codes[border]])
        maps.append(_distance_map(border, spacing))
    to_prediction = maps[1][borders[0]]
    to_reference = maps[0][borders[1]]
    return SurfaceDistances(*_sorted(to_prediction, areas[0]), *_sorted(to_reference, areas[1]))


def robust_hausdorff(distances: SurfaceDistances, percent: float = 95.0) -> float:
    """The larger of the two directions' ``percent`` percentile of distance, weighted by surface area (mm);
    infinite when either mask is empty."""
    return max(
        _percentile(distances.reference_to_prediction, distances.reference_areas, percent),
        _percentile(distances.prediction_to_reference, distances.prediction_areas, percent),
    )


def _percentile(distances: np.ndarray, areas: np.ndarray, percent: float) -> float:
    if distances.size == 0:
        return float("inf")
    cumulative = np.cumsum(areas) / np.sum(areas)
    index = int(np.searchsorted(cumulative, percent / 100.0))
    return float(distances[min(index, distances.size - 1)])


def _neighbourhood_codes(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.correlate(mask, NEIGHBOURHOOD_WEIGHTS, mode="constant", cval=0)


def _distance_map(border: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    if not border.any():
        return np.full(border.shape, np.inf)
    from scipy import ndimage

    return ndimage.distance_transform_edt(~border, sampling=spacing)


def _sorted(distances: np.ndarray, areas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((areas, distances))
    return distances[order].astype(np.float64), areas[order].astype(np.float64)


@cache
def _area_table(spacing: tuple[float, ...]) -> np.ndarray:
    """The surface area (mm^2) of each of the 256 neighbourhood codes at this voxel spacing."""
    table = json.loads((resources.files("btk") / "data" / "surfel_normals.json").read_text(encoding="utf-8"))
    scale = np.array([spacing[1] * spacing[2], spacing[0] * spacing[2], spacing[0] * spacing[1]])
    return np.array(
        [
            sum(float(np.linalg.norm(np.array(v) * table["scale"] * scale)) for v in vectors)
            for vectors in table["codes"]
        ]
    )
