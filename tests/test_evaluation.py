import csv
import math

import numpy as np
import pytest
import SimpleITK as sitk

from btk.cli import main
from btk.evaluation import HD95_EMPTY_PENALTY_MM, evaluate_case, evaluate_folders
from btk.evaluation.metrics import dice, hd95, hd95_against, region_metrics, surface_voxels
from btk.evaluation.nearest import EXHAUSTIVE_PAIRS, nearest_distance_percentile, nearest_distance_percentiles
from tests.support.data import DATA, save, sphere


def _sitk_hd95(a: np.ndarray, b: np.ndarray, spacing: tuple[float, float, float]) -> float:
    """Independent HD95: SimpleITK label contours and Danielsson distance maps (arrays are z, y, x here)."""

    def image(mask):
        img = sitk.GetImageFromArray(mask.astype(np.uint8))
        img.SetSpacing(spacing[::-1])
        return img

    def contour(mask):
        return sitk.GetArrayFromImage(sitk.LabelContour(image(mask), fullyConnected=False)) > 0

    def distance_to(surface):
        return sitk.GetArrayFromImage(sitk.DanielssonDistanceMap(image(surface), useImageSpacing=True))

    sa, sb = contour(a), contour(b)
    return max(np.percentile(distance_to(sb)[sa], 95), np.percentile(distance_to(sa)[sb], 95))


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.9, 0.9, 3.0)])
def test_hd95_matches_simpleitk(spacing):
    shape = (48, 52, 40)
    a = sphere(shape, (20, 24, 18), 9)
    b = sphere(shape, (24, 22, 20), 7) | sphere(shape, (10, 10, 30), 3)
    ours = hd95(a, b, spacing)
    theirs = _sitk_hd95(a, b, spacing)
    assert ours > 3.0
    assert ours == pytest.approx(theirs, abs=1e-3)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.9, 0.9, 3.0), (0.5, 1.2, 1.0)])
def test_nearest_distance_percentiles_equal_a_kd_tree(spacing):
    # SciPy's k-d tree, which btk used before, as the reference: points near the targets (found among the first
    # offsets), a far blob (beyond the last offsets: measured against every target) and single points.
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(7)
    scale = np.asarray(spacing)
    shape = (40, 44, 30)
    near = sphere(shape, (20, 22, 15), 8)
    cases = [
        (sphere(shape, (22, 20, 15), 7), near),
        (sphere(shape, (22, 20, 15), 7) | sphere(shape, (3, 3, 27), 2), near),
        (rng.random(shape) < 0.01, rng.random(shape) < 0.002),
        (sphere(shape, (2, 2, 2), 1), sphere(shape, (37, 41, 27), 1)),
    ]
    # two large spheres far apart: too many pairs left for the exhaustive search, measured by a k-d tree
    big = (140, 70, 70)
    far_apart = (sphere(big, (35, 35, 35), 31), sphere(big, (105, 35, 35), 31))
    far_surfaces = (surface_voxels(far_apart[0]), surface_voxels(far_apart[1]))
    assert np.count_nonzero(far_surfaces[0]) * np.count_nonzero(far_surfaces[1]) > EXHAUSTIVE_PAIRS
    cases.append(far_surfaces)
    for points_mask, targets in cases:
        points = np.argwhere(points_mask)
        expected = cKDTree(np.argwhere(targets) * scale).query(points * scale)[0]
        for percentile in (0.0, 50.0, 95.0, 100.0):
            found = nearest_distance_percentile(points, targets, spacing, percentile)
            assert found == pytest.approx(np.percentile(expected, percentile), abs=1e-9)
    assert nearest_distance_percentile(np.array([[5, 5, 5]]), near, spacing, 95.0) > 0
    with pytest.raises(ValueError, match="at least one point per group and one target"):
        nearest_distance_percentile(points, np.zeros(shape, bool), spacing)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.9, 0.9, 3.0)])
def test_percentiles_of_groups_of_points_equal_each_group_alone(spacing):
    # groups sharing points, one near the targets, one with a far blob (measured against every target), one
    # of a single point: each group's percentile is the one it has measured alone, and the k-d tree's
    from scipy.spatial import cKDTree

    shape = (40, 44, 30)
    near, far = sphere(shape, (22, 20, 15), 7), sphere(shape, (22, 20, 15), 6) | sphere(shape, (3, 3, 27), 2)
    single = np.zeros(shape, bool)
    single[20, 20, 15] = True
    union = near | far | single
    points = np.argwhere(union)
    groups = np.stack([near[union], far[union], single[union]])
    targets = sphere(shape, (20, 22, 15), 8)
    scale = np.asarray(spacing)
    distances = cKDTree(np.argwhere(targets) * scale).query(points * scale)[0]
    for percentile in (0.0, 50.0, 95.0, 100.0):
        found = nearest_distance_percentiles(points, groups, targets, spacing, percentile)
        alone = [nearest_distance_percentile(points[members], targets, spacing, percentile) for members in groups]
        assert found == alone
        assert found == pytest.approx([np.percentile(distances[members], percentile) for members in groups], abs=1e-9)
    with pytest.raises(ValueError, match="at least one point per group"):
        nearest_distance_percentiles(points, np.zeros((1, len(points)), bool), targets, spacing)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.5, 1.2, 1.0)])
def test_hd95_against_one_reference_equals_each_pair_alone(spacing):
    # the agreement report's way (the predictions' surfaces measured against the reference at once) gives each
    # pair's own HD95: near and far predictions, an empty one, and the empty reference
    shape = (48, 44, 36)
    reference = sphere(shape, (24, 22, 18), 9)
    predictions = [
        sphere(shape, (25, 21, 18), 8),
        sphere(shape, (24, 22, 18), 9),
        sphere(shape, (22, 24, 17), 10) | sphere(shape, (3, 3, 32), 2),
        np.zeros(shape, bool),
        sphere(shape, (40, 36, 28), 4),
    ]
    expected = [hd95(prediction, reference, spacing, 500.0) for prediction in predictions]
    assert expected[3] == 500.0 and expected[1] == 0.0 and expected[4] > 10
    assert hd95_against(reference, predictions, spacing, 500.0) == pytest.approx(expected, abs=1e-12)
    empty = np.zeros(shape, bool)
    assert hd95_against(empty, predictions, spacing, 500.0) == [500.0, 500.0, 500.0, 0.0, 500.0]
    assert hd95_against(reference, [empty, empty], spacing, 500.0) == [500.0, 500.0]


def test_surfaces_are_the_voxels_a_6_connected_erosion_removes():
    from scipy import ndimage

    rng = np.random.default_rng(3)
    for mask in (rng.random((12, 9, 7)) < 0.7, sphere((20, 20, 20), (10, 10, 10), 6), np.ones((4, 4, 4), bool)):
        eroded = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(3, 1), border_value=0)
        assert np.array_equal(surface_voxels(mask), mask & ~eroded)


def test_dice_matches_simpleitk_overlap_measures():
    shape = (40, 40, 40)
    a = sphere(shape, (20, 20, 20), 10)
    b = sphere(shape, (23, 20, 18), 9)
    overlap = sitk.LabelOverlapMeasuresImageFilter()
    overlap.Execute(sitk.GetImageFromArray(a.astype(np.uint8)), sitk.GetImageFromArray(b.astype(np.uint8)))
    assert dice(a, b) == pytest.approx(overlap.GetDiceCoefficient(), abs=1e-12)
    assert 0.5 < dice(a, b) < 0.95


def test_empty_region_rules():
    empty = np.zeros((10, 10, 10), bool)
    full = empty.copy()
    full[4:6, 4:6, 4:6] = True
    both = region_metrics(empty, empty)
    assert (both.dice, both.hd95_mm, both.sensitivity, both.specificity) == (1.0, 0.0, 1.0, 1.0)
    one = region_metrics(full, empty)
    assert one.dice == 0.0 and one.hd95_mm == HD95_EMPTY_PENALTY_MM
    assert pytest.approx(math.sqrt(240**2 + 240**2 + 155**2)) == HD95_EMPTY_PENALTY_MM
    assert region_metrics(empty, full).hd95_mm == HD95_EMPTY_PENALTY_MM


def test_sensitivity_specificity_and_volumes_count_voxels_with_spacing():
    ref = np.zeros((10, 10, 10), bool)
    ref[:5] = True  # 500 voxels
    pred = np.zeros_like(ref)
    pred[:4] = True  # 400 voxels, all inside ref
    pred[9, 0, :2] = True  # 2 false positives
    m = region_metrics(pred, ref, (2.0, 1.0, 1.0))
    assert m.sensitivity == pytest.approx(400 / 500)
    assert m.specificity == pytest.approx(498 / 500)
    assert m.volume_pred_ml == pytest.approx(402 * 2 / 1000)
    assert m.volume_ref_ml == pytest.approx(1.0)


def test_evaluate_case_reads_each_map_in_its_own_convention(tmp_path):
    shape = (30, 30, 30)
    pred = np.zeros(shape, np.uint8)
    pred[sphere(shape, (15, 15, 15), 8)] = 2
    pred[sphere(shape, (15, 15, 15), 5)] = 1
    pred[sphere(shape, (15, 15, 15), 3)] = 4
    ref = np.where(pred == 4, 3, pred)  # the same segmentation in the 2023 convention
    rows = evaluate_case(save(pred, tmp_path / "p.nii.gz"), save(ref, tmp_path / "CASE-seg.nii.gz"))
    assert [r.region for r in rows] == ["WT", "TC", "ET"]
    assert all(r.case == "CASE" and r.metrics.dice == 1.0 and r.metrics.hd95_mm == 0.0 for r in rows)


@pytest.mark.slow
def test_cli_folder_mode_writes_one_row_per_case_and_region(tmp_path):
    candidates = DATA / "fusion"
    pred_dir, ref_dir = tmp_path / "pred", tmp_path / "ref"
    for case in ("TCGA-FG-6692", "TCGA-DU-7294"):
        (pred_dir).mkdir(exist_ok=True)
        (ref_dir / case).mkdir(parents=True)
        (pred_dir / f"{case}.nii.gz").write_bytes((candidates / case / "candidates" / "isen-20.nii.gz").read_bytes())
        (ref_dir / case / f"{case}-seg.nii.gz").write_bytes(
            (candidates / case / "brats_toolkit_reference" / "mav.nii.gz").read_bytes()
        )
    out = tmp_path / "eval.csv"
    assert main(["evaluate", str(pred_dir), str(ref_dir), "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["case"] for r in rows] == ["TCGA-DU-7294"] * 3 + ["TCGA-FG-6692"] * 3
    assert list(rows[0]) == [
        "case",
        "region",
        "dice",
        "hd95_mm",
        "sensitivity",
        "specificity",
        "volume_pred_ml",
        "volume_ref_ml",
    ]
    expected = evaluate_folders(pred_dir, ref_dir)
    assert [float(r["dice"]) for r in rows] == pytest.approx([e.metrics.dice for e in expected], rel=1e-5)
    assert all(0.5 < float(r["dice"]) <= 1.0 for r in rows)
    assert any(float(r["dice"]) < 0.99 for r in rows)


def test_cli_missing_prediction_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "pred").mkdir()
    (tmp_path / "ref").mkdir()
    save(np.zeros((4, 4, 4)), tmp_path / "ref" / "A-seg.nii.gz")
    out = tmp_path / "eval.csv"
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "ref"), "-o", str(out)]) == 2
    assert "no prediction for 1 reference case(s): A" in capsys.readouterr().err
    assert not out.exists()


def test_cli_mismatched_grid_names_the_file(tmp_path, capsys):
    a = save(np.zeros((4, 4, 4)), tmp_path / "a.nii.gz")
    b = save(np.zeros((4, 4, 5)), tmp_path / "b.nii.gz")
    assert main(["evaluate", str(a), str(b), "-o", str(tmp_path / "e.csv")]) == 2
    err = capsys.readouterr().err
    assert "a.nii.gz" in err and "(4, 4, 4) differs" in err
