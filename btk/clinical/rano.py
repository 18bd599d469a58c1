"""The RANO bidimensional product of the enhancing tumour, measured the way a reader measures it.

Per enhancing lesion (a connected component of the enhancing region, 26-connected), on every axial slice:
the longest in-plane diameter, then the longest diameter perpendicular to it that crosses it, both measured
edge to edge over the pixels' squares; the lesion's measurement is the slice where their product is largest.
A lesion is *measurable* when both diameters are at least 10 mm and it shows on at least two axial slices
(Wen et al. 2010, RANO: contrast-enhancing lesions with two perpendicular diameters of at least 10 mm,
visible on two or more axial slices). Non-enhancing
parts enclosed by the enhancing rim on a slice (central necrosis) are filled first: a reader measures the
outer margin of a ring-enhancing lesion.

"Axial" is the array axis closest to the world's inferior-superior axis (the third axis on the BraTS grid).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

#: RANO's smallest measurable lesion: both perpendicular diameters at least this long.
MEASURABLE_MM = 10.0
#: RANO's measurable lesion shows on at least this many axial slices.
MEASURABLE_SLICES = 2
#: Spacing of the candidate perpendicular lines along the longest diameter (mm).
LINE_STEP_MM = 0.25
_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class BidimensionalMeasure:
    """The measurement of one enhancing lesion.

    Attributes:
        lesion: The lesion's number, 1 for the largest by volume.
        volume_ml: Its volume.
        slice_index: The axial slice (array index) where the product is largest.
        longest_mm: The longest diameter on that slice.
        perpendicular_mm: The longest diameter perpendicular to it.
        product_mm2: ``longest_mm * perpendicular_mm``.
        measurable: Both diameters are at least 10 mm, on at least two axial slices.
    """

    lesion: int
    volume_ml: float
    slice_index: int
    longest_mm: float
    perpendicular_mm: float
    product_mm2: float
    measurable: bool


def axial_axis(affine: np.ndarray) -> int:
    """The array axis that runs closest to the world's inferior-superior (z) axis."""
    directions = np.asarray(affine, dtype=np.float64)[:3, :3]
    return int(np.argmax(np.abs(directions[2]) / np.linalg.norm(directions, axis=0)))


def measure_lesions(enhancing: np.ndarray, affine: np.ndarray) -> list[BidimensionalMeasure]:
    """The bidimensional measurement of every enhancing lesion, largest lesion first.

    Args:
        enhancing: Boolean mask of the enhancing region (3-D).
        affine: Its voxel-to-world affine (orthogonal axes).
    """
    axis = axial_axis(affine)
    in_plane = [k for k in range(3) if k != axis]
    spacing = np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)
    pixel = (float(spacing[in_plane[0]]), float(spacing[in_plane[1]]))
    voxel_ml = float(np.prod(spacing)) / 1000.0
    components, count = ndimage.label(enhancing, structure=_CONNECTIVITY)
    if count == 0:
        return []
    sizes = np.bincount(components.ravel(), minlength=count + 1)
    order = sorted(range(1, count + 1), key=lambda label: (-sizes[label], label))
    boxes = ndimage.find_objects(components)
    measures = []
    for number, label in enumerate(order, start=1):
        box = boxes[label - 1]
        lesion = np.moveaxis(components[box] == label, axis, 0)
        best = _best_slice(lesion, pixel)
        slice_index, longest, perpendicular = best[0] + box[axis].start, best[1], best[2]
        measures.append(
            BidimensionalMeasure(
                lesion=number,
                volume_ml=float(sizes[label]) * voxel_ml,
                slice_index=int(slice_index),
                longest_mm=longest,
                perpendicular_mm=perpendicular,
                product_mm2=longest * perpendicular,
                measurable=longest >= MEASURABLE_MM
                and perpendicular >= MEASURABLE_MM
                and int(np.count_nonzero(lesion.any(axis=(1, 2)))) >= MEASURABLE_SLICES,
            )
        )
    return measures


def _best_slice(lesion: np.ndarray, pixel: tuple[float, float]) -> tuple[int, float, float]:
    """(slice, longest, perpendicular) of the slice with the largest product; slices along axis 0.

    Slices are visited longest diameter first and the search stops once no remaining slice can beat the best
    product (the perpendicular diameter is never longer than the slice's width across the longest one).
    """
    candidates = []
    for index in range(lesion.shape[0]):
        area = ndimage.binary_fill_holes(lesion[index])
        if area.any():
            corners = _pixel_corners(area, pixel)
            ends = _longest_chord_ends(corners)
            candidates.append((index, area, ends))
    candidates.sort(key=lambda item: -float(np.linalg.norm(item[2][1] - item[2][0])))
    best = (candidates[0][0], 0.0, 0.0)
    for index, area, (start, end) in candidates:
        longest = float(np.linalg.norm(end - start))
        if longest * longest <= best[1] * best[2]:
            break
        perpendicular = _perpendicular_diameter(area, pixel, start, end)
        if longest * perpendicular > best[1] * best[2]:
            best = (index, longest, perpendicular)
    return best


def _pixel_corners(area: np.ndarray, pixel: tuple[float, float]) -> np.ndarray:
    """The corners (mm) of the pixels of a 2-D mask, without repeats."""
    rows, cols = np.nonzero(area)
    corners = np.concatenate(
        [np.stack([(rows + dr) * pixel[0], (cols + dc) * pixel[1]], axis=1) for dr in (0, 1) for dc in (0, 1)]
    )
    return np.unique(corners, axis=0)


def _longest_chord_ends(corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two points of ``corners`` farthest apart (among the vertices of their convex hull)."""
    try:
        hull = corners[ConvexHull(corners).vertices]
    except QhullError:  # collinear points cannot occur for pixel squares; kept for safety
        hull = corners
    distances = np.linalg.norm(hull[:, None, :] - hull[None, :, :], axis=2)
    first, second = np.unravel_index(int(np.argmax(distances)), distances.shape)
    return hull[first], hull[second]


def _perpendicular_diameter(area: np.ndarray, pixel: tuple[float, float], start: np.ndarray, end: np.ndarray) -> float:
    """The longest segment inside the pixels' squares, perpendicular to ``start``-``end`` and crossing it."""
    length = float(np.linalg.norm(end - start))
    along = (end - start) / length
    normal = np.array([-along[1], along[0]])
    rows, cols = np.nonzero(area)
    low = np.stack([rows * pixel[0], cols * pixel[1]], axis=1).astype(np.float64)
    high = low + np.asarray(pixel)
    middle = (start + end) / 2.0
    steps = int(np.floor(length / 2.0 / LINE_STEP_MM))
    best = 0.0
    for offset in np.arange(-steps, steps + 1) * LINE_STEP_MM:
        origin = middle + offset * along
        best = max(best, _chord_through(origin, normal, low, high))
    return best


def _chord_through(origin: np.ndarray, direction: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Length of the run of pixel squares ``[low, high]`` that the line ``origin + t direction`` crosses at
    ``t = 0`` (0 when ``origin`` lies outside every square)."""
    entry = np.full(len(low), -np.inf)
    leave = np.full(len(low), np.inf)
    for k in range(2):
        if abs(direction[k]) < 1e-12:
            outside = (origin[k] < low[:, k]) | (origin[k] > high[:, k])
            entry[outside], leave[outside] = np.inf, -np.inf
            continue
        t1 = (low[:, k] - origin[k]) / direction[k]
        t2 = (high[:, k] - origin[k]) / direction[k]
        entry = np.maximum(entry, np.minimum(t1, t2))
        leave = np.minimum(leave, np.maximum(t1, t2))
    crossed = leave > entry + 1e-9
    if not crossed.any():
        return 0.0
    entry, leave = entry[crossed], leave[crossed]
    order = np.argsort(entry)
    entry, leave = entry[order], leave[order]
    reach = np.maximum.accumulate(leave)
    starts = np.concatenate([[True], entry[1:] > reach[:-1] + 1e-9])
    run_start = entry[starts]
    run_end = np.maximum.reduceat(leave, np.flatnonzero(starts))
    holding = np.flatnonzero((run_start <= 1e-9) & (run_end >= -1e-9))
    return float(run_end[holding[0]] - run_start[holding[0]]) if len(holding) else 0.0
