"""Quickshear defacing (btk.preprocess.deface): known answers on constructed masks, orientation and voxel-size
handling, hostile masks, and agreement with brainles-preprocessing's Quickshear on real HD-BET masks."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from btk.errors import InputError
from btk.preprocess.deface import DEFACE_BUFFER_MM, deface, face_mask
from tests.support.preprocess import dice

ORACLE = Path(__file__).resolve().parent / "data" / "defacing_oracle"
RAS_1MM = np.eye(4)


def wedge(shape=(30, 80, 100)) -> np.ndarray:
    """A brain whose underside rises towards the front (RAS axes, 1 mm): columns a = 20..60 hold s >= a, up to
    s = 90; its lower hull is the line s = a."""
    brain = np.zeros(shape, dtype=bool)
    for a in range(20, 61):
        brain[5:25, a, a:91] = True
    return brain


def test_a_flat_underside_is_sheared_the_buffer_below_it_everywhere():
    brain = np.zeros((20, 60, 60), dtype=bool)
    brain[5:15, 10:50, 30:55] = True
    face = face_mask(brain, RAS_1MM)
    expected = np.zeros_like(face)
    expected[:, :, : 30 - 10] = True  # s < 30 - 10 mm, across the whole grid
    assert np.array_equal(face, expected)


def test_a_sloped_underside_gives_the_known_plane():
    brain = wedge()
    face = face_mask(brain, RAS_1MM)
    a, s = np.meshgrid(np.arange(80), np.arange(100), indexing="ij")
    expected = np.broadcast_to(s < a - DEFACE_BUFFER_MM, brain.shape)  # the hull's line s = a, 10 mm lower
    assert np.array_equal(face, expected)
    assert not (face & brain).any()
    assert np.array_equal(face_mask(brain, RAS_1MM, buffer_mm=0), np.broadcast_to(s < a, brain.shape))


def test_only_the_first_hull_edge_from_the_front_counts():
    """Behind the frontal pole's edge the underside may turn (the cerebellum): the plane follows the front edge."""
    brain = wedge()
    brain[5:25, 10:20, 5:91] = True  # a low back part: the lower hull turns at a = 20
    face = face_mask(brain, RAS_1MM)
    a, s = np.meshgrid(np.arange(80), np.arange(100), indexing="ij")
    # the lower hull of the points (a, lowest s), (10..19, 5) and (20..60, a): its edge from the front pole
    # (60, 60) runs to the corner (19, 5); a line through the pole and (10, 5) would cut (19, 5) off
    slope = (60 - 5) / (60 - 19)
    expected = np.broadcast_to(s < 60 - slope * (60 - a) - DEFACE_BUFFER_MM, brain.shape)
    assert np.array_equal(face, expected)
    assert not (face & brain).any()


@pytest.mark.parametrize("codes", ["LPS", "RAS", "LAS", "PSR", "SAL"])
def test_the_plane_does_not_depend_on_how_the_axes_are_stored(codes):
    """The wedge stored in other axis orders and directions: the face found is the same voxels."""
    from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, ornt_transform

    brain = wedge()
    transform = ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(codes))
    stored = apply_orientation(brain, transform)
    affine = RAS_1MM @ inv_ornt_aff(transform, brain.shape)
    assert nib.aff2axcodes(affine) == tuple(codes)
    face = face_mask(stored, affine)
    assert np.array_equal(face, apply_orientation(face_mask(brain, RAS_1MM), transform))


def test_the_buffer_is_in_millimetres_on_thick_slices():
    """5 mm slices: a 10 mm buffer is two slices, not ten."""
    brain = np.zeros((20, 60, 30), dtype=bool)
    brain[5:15, 10:50, 10:25] = True
    face = face_mask(brain, np.diag([1.0, 1.0, 5.0, 1.0]))
    assert face[:, :, :8].all() and not face[:, :, 8:].any()  # slices 0-7 lie over 10 mm below slice 10


def test_deface_zeroes_the_face_and_nothing_else():
    brain = wedge()
    rng = np.random.default_rng(0)
    head = rng.uniform(1, 100, brain.shape).astype(np.float32)
    defaced = deface(nib.Nifti1Image(head, RAS_1MM), head, brain)
    face = face_mask(brain, RAS_1MM)
    assert not defaced[face].any() and np.array_equal(defaced[~face], head[~face])
    assert head.min() > 0  # the input is untouched


def test_random_brains_never_lose_a_voxel():
    rng = np.random.default_rng(7)
    grid = np.indices((40, 50, 45)).reshape(3, -1).T
    for _ in range(20):
        centre, radii = rng.uniform(15, 30, 3), rng.uniform(4, 14, 3)
        rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        local = (grid - centre) @ rotation
        brain = (((local / radii) ** 2).sum(axis=1) <= 1).reshape(40, 50, 45)
        affine = np.diag([*rng.uniform(0.5, 3.0, 3), 1.0])
        buffer = float(rng.uniform(0, 12))
        assert not (face_mask(brain, affine, buffer_mm=buffer) & brain).any()


@pytest.mark.parametrize(
    "brain",
    [np.zeros((20, 20, 20), dtype=bool), np.pad(np.ones((5, 1, 5), dtype=bool), 5)],
    ids=["empty", "one-voxel-thin"],
)
def test_a_mask_without_a_brain_is_refused(brain):
    with pytest.raises(InputError, match="brain mask is empty"):
        face_mask(brain, RAS_1MM)


@pytest.mark.parametrize("buffer", [-1.0, float("nan"), float("inf")])
def test_a_nonsense_buffer_is_refused(buffer):
    with pytest.raises(InputError, match="buffer"):
        face_mask(wedge(), RAS_1MM, buffer_mm=buffer)


@pytest.mark.parametrize("case", ["sri24", "native-t1c"])
def test_agreement_with_brainles_preprocessing_quickshear(case):
    """brainles-preprocessing 0.6.14's run_quickshear on BraTS Toolkit's HD-BET masks of the TCIA exam
    (tests/data/defacing_oracle, made by tools/quickshear_oracle.py): the same brain kept, everything it
    shears off sheared off here too, and the kept regions' Dice (measured: 0.9975 on the SRI24 grid, 0.9695 on
    the native T1c grid).

    The differences are theirs: an edge detection that adds a ring of voxels outside the brain (their plane lies
    one column further forward), an integer cut per column, and, on grids with fewer slices than coronal
    columns, a cut only of the first ``shape[2]`` columns from the front (``np.arange(mask.shape[2])``): 26 of
    the native T1c's 224 (brainles-preprocessing shears on the 1 mm SRI24 grid, where it does not show)."""
    from tools.quickshear_oracle import MASKS

    record = json.loads((ORACLE / "quickshear.json").read_text())["cases"][case]
    image = nib.load(str(MASKS[case]))
    brain = np.asanyarray(image.dataobj) > 0
    theirs = np.asanyarray(nib.load(str(ORACLE / record["kept"])).dataobj) > 0
    ours = ~face_mask(brain, image.affine)
    assert brain.sum() > 100_000 if case == "sri24" else brain.sum() > 20_000
    assert not (brain & ~ours).any() and not (brain & ~theirs).any()  # zero brain voxels removed
    assert not (ours & ~theirs).any()  # what they remove, we remove
    assert dice(ours, theirs) >= {"sri24": 0.995, "native-t1c": 0.965}[case]
    assert (~ours).sum() > 0.05 * ours.size  # a real part of the grid is the face side
