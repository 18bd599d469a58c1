"""``--scheme brats2023`` equals the official BraTS 2023 metrics code, number for number.

The expected values in ``tests/data/evaluation_oracle/brats2023.json`` were produced by the official code
itself (``make_brats2023.py`` there, run in the code's own virtual environment) on the pairs of
``tests.support.evaluation_cases``: real candidates with several lesions and small fragments, an empty
region, an empty prediction, an empty reference and two empty maps, for the glioma, metastases and
meningioma settings.
"""

import csv
import json

import nibabel as nib
import numpy as np
import pytest

from btk.cli import main
from btk.errors import BtkError
from btk.evaluation import EvaluationSettings, evaluate_arrays
from btk.evaluation.brats2023 import HD95_PENALTY_MM, Brats2023Row
from btk.evaluation.surface import _area_table, robust_hausdorff, surface_distances
from btk.labels import BRATS_2023
from tests.support.data import DATA
from tests.support.evaluation_cases import pairs

ORACLE = json.loads((DATA / "evaluation_oracle" / "brats2023.json").read_text())
PAIRS = pairs()
CHALLENGES = ("gli", "met", "men")


def _close(mine: float, expected: float, field: str) -> bool:
    return abs(mine - expected) <= (1e-4 if "hd95" in field else 1e-6)


@pytest.mark.parametrize("spacing", list(ORACLE["surface_element_areas"]))
def test_surface_element_areas_equal_the_official_ones_for_every_neighbourhood(spacing):
    expected = np.array(ORACLE["surface_element_areas"][spacing])
    mine = _area_table(tuple(float(s) for s in spacing.split("x")))
    np.testing.assert_allclose(mine, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", list(PAIRS))
@pytest.mark.slow
def test_every_metric_equals_the_official_code(name):
    prediction, reference = PAIRS[name]
    for challenge in CHALLENGES:
        rows = evaluate_arrays(
            prediction,
            reference,
            case=name,
            settings=EvaluationSettings("brats2023", challenge),
            prediction_labels="brats2023",
            reference_labels="brats2023",
        )
        assert [row.region for row in rows] == ["WT", "TC", "ET"]
        for row in rows:
            expected = ORACLE["results"][f"{name}/{challenge}"][row.region]
            for field, value in expected.items():
                assert _close(getattr(row, field), value, field), (
                    challenge,
                    row.region,
                    field,
                    getattr(row, field),
                    value,
                )


def test_the_pairs_cover_the_official_edge_cases():
    """Several lesions, missed and false-positive lesions, empty regions and maps are among the expected values."""
    results = ORACLE["results"]
    assert results["two-tumours/gli"]["WT"]["num_tp"] >= 2
    assert results["second-tumour-missed/gli"]["WT"]["num_fn"] >= 1
    assert results["second-tumour-false-positive/gli"]["WT"]["num_fp"] >= 1
    assert results["reference-without-et/gli"]["ET"]["legacy_hd95_mm"] == HD95_PENALTY_MM
    assert results["both-empty/gli"]["WT"] == {
        **results["both-empty/gli"]["WT"],
        "lesionwise_dice": 1,
        "legacy_hd95_mm": 0,
    }
    met, gli = results["fg6692-scan-vs-isen/met"]["WT"], results["fg6692-scan-vs-isen/gli"]["WT"]
    assert met != gli  # the metastases settings (dilation 1, 2 mm^3) change the numbers


def test_surface_distances_of_empty_masks():
    empty, ball = np.zeros((8, 8, 8), bool), np.zeros((8, 8, 8), bool)
    ball[2:5, 2:5, 2:5] = True
    assert robust_hausdorff(surface_distances(ball, empty)) == float("inf")
    assert robust_hausdorff(surface_distances(ball, ball)) == 0.0
    assert surface_distances(empty, empty).reference_areas.size == 0


def test_legacy_scheme_with_the_surface_area_hd95_matches_the_official_legacy_hd95():
    prediction, reference = PAIRS["fg6692-scan-vs-isen"]
    legacy = evaluate_arrays(
        prediction,
        reference,
        settings=EvaluationSettings(hd95="surface-area"),
        prediction_labels="brats2023",
        reference_labels="brats2023",
    )
    expected = ORACLE["results"]["fg6692-scan-vs-isen/gli"]
    for row in legacy:
        assert abs(row.metrics.hd95_mm - expected[row.region]["legacy_hd95_mm"]) <= 1e-4
        assert abs(row.metrics.dice - expected[row.region]["legacy_dice"]) <= 1e-6
    voxel = evaluate_arrays(prediction, reference, prediction_labels="brats2023", reference_labels="brats2023")
    assert [r.metrics.dice for r in voxel] == [r.metrics.dice for r in legacy]


def test_evaluate_command_writes_the_brats2023_columns_for_files_and_folders(tmp_path, capsys):
    prediction, reference = PAIRS["du7294-hnf-vs-isen"]
    affine = nib.load(str(DATA / "fusion" / "TCGA-DU-7294" / "candidates" / "isen-20.nii.gz")).affine
    for folder, array in (("pred", prediction), ("ref", reference)):
        (tmp_path / folder).mkdir()
        nib.save(nib.Nifti1Image(array, affine), str(tmp_path / folder / "case1.nii.gz"))
    out = tmp_path / "lesionwise.csv"
    code = main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "ref"), "-o", str(out), "--scheme", "brats2023"])
    assert code == 0, capsys.readouterr().err
    rows = list(csv.DictReader(out.open()))
    assert tuple(rows[0]) == Brats2023Row.COLUMNS and [r["region"] for r in rows] == ["WT", "TC", "ET"]
    expected = ORACLE["results"]["du7294-hnf-vs-isen/gli"]
    for row in rows:
        assert abs(float(row["lesionwise_dice"]) - expected[row["region"]]["lesionwise_dice"]) < 1e-5
        assert int(row["num_fp"]) == expected[row["region"]]["num_fp"]
    assert "Wrote 3 rows" in " ".join(capsys.readouterr().err.split())
    single = tmp_path / "single.csv"
    files = [str(tmp_path / "pred" / "case1.nii.gz"), str(tmp_path / "ref" / "case1.nii.gz")]
    assert main(["evaluate", *files, "-o", str(single), "--scheme", "brats2023", "--challenge", "met"]) == 0
    assert main(["evaluate", *files, "-o", str(single), "--scheme", "brats2023", "--force"]) == 0  # btk's: replaced


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--scheme", "brats2019"], "unknown evaluation scheme 'brats2019'"),
        (["--scheme", "brats2023", "--challenge", "goat"], "no settings for the 'goat' challenge"),
        (["--hd95", "mean"], "unknown HD95 definition 'mean'"),
        (["--scheme", "brats2023", "--hd95", "surface-area"], "--hd95 chooses the HD95 of the legacy scheme"),
        (["--scheme", "brats2023", "--pred-labels", "brats2024-ped"], "which the brats2024-ped convention lacks"),
    ],
)
def test_bad_settings_are_one_clear_error_and_no_csv(tmp_path, options, message, capsys):
    prediction, reference = PAIRS["fg6692-scan-vs-isen"]
    for name, array in (("p.nii.gz", prediction), ("r.nii.gz", reference)):
        nib.save(nib.Nifti1Image(array, np.eye(4)), str(tmp_path / name))
    out = tmp_path / "out.csv"
    assert main(["evaluate", str(tmp_path / "p.nii.gz"), str(tmp_path / "r.nii.gz"), "-o", str(out), *options]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert message in err and "Traceback" not in err and not out.exists()


def test_settings_are_checked_in_the_python_api():
    with pytest.raises(BtkError, match="unknown evaluation scheme"):
        EvaluationSettings("lesionwise")
    assert EvaluationSettings("brats2023", "ped").columns == Brats2023Row.COLUMNS
    rows = evaluate_arrays(
        np.zeros((4, 4, 4), np.uint8),
        np.zeros((4, 4, 4), np.uint8),
        settings=EvaluationSettings("brats2023"),
        prediction_labels=BRATS_2023,
        reference_labels=BRATS_2023,
    )
    assert [(r.lesionwise_dice, r.lesionwise_hd95_mm, r.num_fp) for r in rows] == [(1.0, 0.0, 0)] * 3
