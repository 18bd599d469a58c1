"""Multifocality: the separate foci of a region.

A focus is a connected part of the region (26-connected) of at least 0.1 ml; parts closer than 5 mm to each
other count as one focus (the distance between the centres of their closest voxels). Both thresholds follow
Raidionics' multifocality (Bouget et al., Front Neurol 2022, doi:10.3389/fneur.2022.932219); smaller parts
are left out of the count (they remain in the region's volume).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from btk.clinical.size import voxel_volume_ml

#: Smallest connected part that counts as a focus (ml).
MINIMUM_FOCUS_ML = 0.1
#: Parts closer than this (mm) are one focus.
MERGE_DISTANCE_MM = 5.0
_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class Foci:
    """The foci of a region.

    Attributes:
        labels: Voxel -> focus number (1 for the largest focus, 0 outside every focus), on the mask's grid.
        volumes_ml: The volume of focus ``k`` at index ``k - 1``, largest first.
    """

    labels: np.ndarray
    volumes_ml: tuple[float, ...]

    @property
    def count(self) -> int:
        """How many foci."""
        return len(self.volumes_ml)


def find_foci(
    mask: np.ndarray,
    affine: np.ndarray,
    minimum_ml: float = MINIMUM_FOCUS_ML,
    merge_mm: float = MERGE_DISTANCE_MM,
) -> Foci:
    """The foci of a boolean mask.

    Args:
        mask: The region (3-D).
        affine: Its voxel-to-world affine.
        minimum_ml: Smallest connected part counted.
        merge_mm: Parts closer than this are merged.
    """
    voxel_ml = voxel_volume_ml(affine)
    components, count = ndimage.label(mask, structure=_CONNECTIVITY)
    if count == 0:
        return Foci(np.zeros(mask.shape, dtype=np.int32), ())
    sizes = np.bincount(components.ravel(), minlength=count + 1)
    kept = [label for label in range(1, count + 1) if sizes[label] * voxel_ml >= minimum_ml - 1e-12]
    groups = _merge_close(components, kept, affine, merge_mm)
    volumes = [sum(int(sizes[label]) for label in group) for group in groups]
    order = sorted(range(len(groups)), key=lambda g: (-volumes[g], min(groups[g])))
    lookup = np.zeros(count + 1, dtype=np.int32)
    for number, group in enumerate(order, start=1):
        lookup[list(groups[group])] = number
    return Foci(lookup[components], tuple(volumes[g] * voxel_ml for g in order))


def _merge_close(components: np.ndarray, kept: list[int], affine: np.ndarray, merge_mm: float) -> list[set[int]]:
    """Group the components ``kept`` whose closest voxels are less than ``merge_mm`` apart (transitively)."""
    parent = {label: label for label in kept}

    def root(label: int) -> int:
        while parent[label] != label:
            parent[label] = parent[parent[label]]
            label = parent[label]
        return label

    surfaces = {}
    boxes = ndimage.find_objects(components)
    matrix = np.asarray(affine, dtype=np.float64)
    for label in kept:
        box = boxes[label - 1]
        part = components[box] == label
        border = part & ~ndimage.binary_erosion(part, structure=_CONNECTIVITY)
        indices = np.argwhere(border) + [s.start for s in box]
        surfaces[label] = cKDTree(indices @ matrix[:3, :3].T + matrix[:3, 3])
    for position, first in enumerate(kept):
        for second in kept[position + 1 :]:
            if root(first) == root(second):
                continue
            distance, _ = surfaces[second].query(surfaces[first].data, k=1, distance_upper_bound=merge_mm)
            if np.min(distance) < merge_mm:
                parent[root(second)] = root(first)
    groups: dict[int, set[int]] = {}
    for label in kept:
        groups.setdefault(root(label), set()).add(label)
    return list(groups.values())
