"""The clinical measures on constructed masks whose answers are known exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from btk.clinical.foci import find_foci
from btk.clinical.laterality import crosses_midline, laterality
from btk.clinical.location import LEFT, RIGHT
from btk.clinical.rano import axial_axis, measure_lesions
from btk.clinical.size import principal_diameters_mm, volume_ml
from tests.support.data import sphere

IDENTITY = np.eye(4)


def box(shape, start, size):
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(a, a + n) for a, n in zip(start, size))] = True
    return mask


# --- size ------------------------------------------------------------------------------------------------------


def test_box_volume_and_diameters_are_exact():
    mask = box((50, 50, 50), (5, 10, 3), (10, 20, 30))
    assert volume_ml(mask, IDENTITY) == pytest.approx(6.0)
    assert principal_diameters_mm(mask, IDENTITY) == pytest.approx((30.0, 20.0, 10.0), abs=1e-9)


def test_diameters_follow_the_voxel_size_and_the_grid_orientation():
    # 10 x 20 x 15 voxels of 2 x 1 x 2 mm, the axes flipped and swapped (an LPS-like, rotated grid)
    affine = np.array([[0, -1.0, 0, 10], [2.0, 0, 0, -4], [0, 0, -2.0, 7], [0, 0, 0, 1]])
    mask = box((40, 40, 40), (3, 4, 5), (10, 20, 15))
    assert volume_ml(mask, affine) == pytest.approx(10 * 20 * 15 * 4 / 1000)
    assert principal_diameters_mm(mask, affine) == pytest.approx((30.0, 20.0, 20.0), abs=1e-9)


def test_an_oblique_slab_measures_along_its_own_axes():
    # a 1 x 1 x 1 mm grid rotated 45 degrees about z: the box's axes are the grid's, not the world's
    c = math.sqrt(0.5)
    affine = np.array([[c, -c, 0, 0], [c, c, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1]])
    mask = box((40, 40, 20), (2, 2, 2), (30, 6, 4))
    assert principal_diameters_mm(mask, affine) == pytest.approx((30.0, 6.0, 4.0), abs=1e-9)


def test_empty_mask_measures_zero():
    mask = np.zeros((5, 5, 5), dtype=bool)
    assert volume_ml(mask, IDENTITY) == 0.0
    assert principal_diameters_mm(mask, IDENTITY) == (0.0, 0.0, 0.0)


# --- RANO bidimensional product -------------------------------------------------------------------------------


def test_rectangle_product_is_exact():
    """A 10 x 20 mm rectangle: longest diameter its diagonal sqrt(500); the longest chord perpendicular to it
    (through the centre) 10 * sqrt(500) / 20; product (10^2 + 20^2) * 10 / 20 = 250 mm^2."""
    (lesion,) = measure_lesions(box((40, 40, 12), (5, 5, 4), (10, 20, 3)), IDENTITY)
    assert lesion.longest_mm == pytest.approx(math.sqrt(500))
    assert lesion.perpendicular_mm == pytest.approx(math.sqrt(500) / 2)
    assert lesion.product_mm2 == pytest.approx(250.0)
    assert lesion.measurable
    assert lesion.volume_ml == pytest.approx(0.6)


def test_square_product_and_rano_threshold():
    (square,) = measure_lesions(box((40, 40, 12), (5, 5, 4), (10, 10, 3)), IDENTITY)
    assert square.longest_mm == pytest.approx(math.sqrt(200))
    assert square.product_mm2 == pytest.approx(200.0)
    # 8 x 20 mm: perpendicular 8 * sqrt(464) / 20 = 8.6 mm < 10 mm: not measurable
    (thin,) = measure_lesions(box((40, 40, 12), (5, 5, 4), (8, 20, 3)), IDENTITY)
    assert thin.perpendicular_mm == pytest.approx(8 * math.sqrt(464) / 20)
    assert not thin.measurable
    # large enough, but on a single axial slice: not measurable either
    (flat,) = measure_lesions(box((40, 40, 12), (5, 5, 4), (10, 20, 1)), IDENTITY)
    assert flat.product_mm2 == pytest.approx(250.0) and not flat.measurable


def test_ring_enhancement_is_measured_at_its_outer_margin():
    ring = box((40, 40, 12), (5, 5, 4), (10, 20, 3)) & ~box((40, 40, 12), (7, 7, 4), (6, 16, 3))
    (lesion,) = measure_lesions(ring, IDENTITY)
    assert lesion.product_mm2 == pytest.approx(250.0)


def test_the_slice_with_the_largest_product_is_chosen_per_lesion_largest_lesion_first():
    mask = box((60, 60, 20), (5, 5, 4), (10, 10, 6))  # 10 x 10 mm on slices 4-9 ...
    mask |= box((60, 60, 20), (3, 3, 7), (14, 14, 1))  # ... 14 x 14 mm on slice 7
    mask |= box((60, 60, 20), (40, 40, 2), (12, 12, 2))  # a second, smaller lesion
    first, second = measure_lesions(mask, IDENTITY)
    assert (first.lesion, first.slice_index) == (1, 7)
    assert first.product_mm2 == pytest.approx(2 * 14 * 14)
    assert (second.lesion, second.slice_index) == (2, 2)
    assert second.product_mm2 == pytest.approx(2 * 12 * 12)


def test_axial_axis_follows_the_affine():
    assert axial_axis(IDENTITY) == 2
    sagittal = np.array([[0, 0, 1.0, 0], [0, 1.0, 0, 0], [1.0, 0, 0, 0], [0, 0, 0, 1]])
    assert axial_axis(sagittal) == 0
    # slices along axis 0 of a 'sagittally stored' volume: the rectangle lies in the y-z plane
    mask = box((12, 40, 40), (4, 5, 5), (3, 20, 10))
    (lesion,) = measure_lesions(mask, sagittal)
    assert lesion.product_mm2 == pytest.approx(250.0)


def test_no_enhancing_voxels_no_lesion():
    assert measure_lesions(np.zeros((10, 10, 10), dtype=bool), IDENTITY) == []


# --- foci ----------------------------------------------------------------------------------------------------


def test_two_spheres_10_mm_apart_are_two_foci():
    shape = (80, 60, 60)
    # radius 8 mm, centres 26 mm apart: 10 mm of background between them
    first, second = sphere(shape, (20, 30, 30), 8), sphere(shape, (46, 30, 30), 8)
    foci = find_foci(first | second, IDENTITY)
    assert foci.count == 2
    assert foci.volumes_ml[0] == pytest.approx(np.count_nonzero(first) / 1000)
    assert set(np.unique(foci.labels[first])) | set(np.unique(foci.labels[second])) == {1, 2}


def test_parts_closer_than_5_mm_are_one_focus_and_specks_do_not_count():
    shape = (60, 30, 30)
    a = box(shape, (5, 5, 5), (10, 10, 10))
    b = box(shape, (18, 5, 5), (10, 10, 10))  # closest voxel centres 4 mm apart (3 empty voxels between)
    c = box(shape, (33, 5, 5), (10, 10, 10))  # closest centres 6 mm from b's
    speck = box(shape, (55, 20, 20), (4, 4, 4))  # 0.064 ml < 0.1 ml
    foci = find_foci(a | b | c | speck, IDENTITY)
    assert foci.count == 2
    assert foci.volumes_ml == pytest.approx((2.0, 1.0))
    assert np.all(foci.labels[a | b] == 1) and np.all(foci.labels[c] == 2) and np.all(foci.labels[speck] == 0)


def test_foci_distance_is_measured_in_mm():
    # two boxes whose closest voxel centres are 4 voxels apart: 4 mm on 1 mm voxels, 8 mm on 2 mm voxels
    shape = (40, 20, 20)
    mask = box(shape, (2, 2, 2), (5, 5, 5)) | box(shape, (10, 2, 2), (5, 5, 5))
    assert find_foci(mask, np.diag([2.0, 2.0, 2.0, 1.0])).count == 2
    assert find_foci(mask, IDENTITY).count == 1


# --- laterality (with a hemisphere map split at a known plane; the shipped map is tested on world coordinates
# in test_clinical_location.py) --------------------------------------------------------------------------------


def test_laterality_shares_and_midline_crossing():
    sides = np.full((40, 10, 10), RIGHT, dtype=np.uint8)
    sides[20:] = LEFT
    straddling = box(sides.shape, (15, 2, 2), (10, 4, 4))
    result = laterality(straddling, sides)
    assert (result.left_percent, result.right_percent, result.side) == (50.0, 50.0, "bilateral")
    assert crosses_midline(straddling, sides)
    lateral = box(sides.shape, (22, 2, 2), (6, 4, 4))
    assert laterality(lateral, sides).side == "left"
    assert not crosses_midline(lateral, sides)
    assert laterality(np.zeros_like(lateral), sides) is None
