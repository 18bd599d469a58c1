"""``--scheme brats2025`` equals the official BraTS 2025 evaluator (``brats-evaluation`` 0.0.10 on panoptica
2.1.7), number for number.

The expected values in ``tests/data/evaluation_oracle/brats2025.json`` were produced by the official tool
itself (``make_brats2025.py`` there, run in the tool's own virtual environment: its command line, then its
``parse_seg_results``) on the pairs of ``tests.support.evaluation_cases``: real candidates with several
lesions and small fragments, missed and false-positive tumours, tumours that miss each other, an empty
region, an empty prediction, an empty reference and two empty maps; for the glioma (also on an anisotropic
grid), meningioma radiotherapy, paediatric, metastases and GoAT configurations, each pair renumbered into
the configuration's labels.
"""

import csv
import json
import math

import nibabel as nib
import numpy as np
import pytest

from btk.cli import main
from btk.errors import BtkError
from btk.evaluation import EvaluationSettings, MetsThresholds, evaluate_arrays
from btk.evaluation.brats2025 import (
    CHALLENGES,
    HD95_PENALTY_MM,
    Brats2025Row,
    border_distances,
    evaluate_brats2025,
    region_scores,
)
from tests.support.data import DATA
from tests.support.evaluation_cases import more_pairs, pairs

ORACLE = json.loads((DATA / "evaluation_oracle" / "brats2025.json").read_text())
PAIRS = {**pairs(), **more_pairs()}
EMPTY = ("empty-prediction", "empty-reference", "both-empty", "reference-without-et")


def _expected(value: object) -> float:
    """A value of the oracle's JSON as a number (null is NaN, "inf" infinity)."""
    return float("nan") if value is None else float(value)  # type: ignore[arg-type]


def _agrees(mine: float, expected: float, field: str) -> bool:
    if math.isnan(expected) or math.isinf(expected):
        return (math.isnan(mine) and math.isnan(expected)) or mine == expected
    return abs(mine - expected) <= (1e-4 if "hd95" in field else 1e-6)


def _spacing(evaluation: str) -> tuple[float, ...]:
    """The evaluation's spacing as a NIfTI header holds it (float32), which is what the official tool read."""
    spacing = tuple(float(np.float32(s)) for s in ORACLE["evaluations"][evaluation]["spacing"])
    assert spacing == tuple(ORACLE["evaluations"][evaluation]["spacing_read_by_the_official_tool"])
    return spacing


def _rows(name: str, evaluation: str) -> list[Brats2025Row]:
    about = ORACLE["evaluations"][evaluation]
    lookup = np.array(about["labels_from_brats2023"], np.uint8)
    prediction, reference = (lookup[array] for array in PAIRS[name])
    return evaluate_arrays(  # type: ignore[return-value]
        prediction,
        reference,
        spacing=_spacing(evaluation),
        case=name,
        settings=EvaluationSettings("brats2025", about["challenge"], mets=_thresholds(evaluation)),
    )


def _thresholds(evaluation: str) -> MetsThresholds | None:
    """The metastases thresholds the evaluation was parsed with (None: the default ones, or none)."""
    given = ORACLE["evaluations"][evaluation].get("mets_thresholds")
    return MetsThresholds(*given) if given and tuple(given) != (20.0, 0.1) else None


def _check(name: str, evaluation: str) -> int:
    """Assert that every value of one pair and evaluation is the official one; the number compared."""
    rows = _rows(name, evaluation)
    expected = ORACLE["results"][f"{name}/{evaluation}"]
    assert sorted(row.region for row in rows) == sorted(expected)
    compared = 0
    for row in rows:
        assert set(row.COLUMNS[2:]) == set(expected[row.region]), "btk's columns are the official parser's"
        for field in row.COLUMNS[2:]:
            mine, theirs = getattr(row, field), _expected(expected[row.region][field])
            assert _agrees(mine, theirs, field), (evaluation, row.region, field, mine, theirs)
            compared += 1
    return compared


CASES = [(name, evaluation) for evaluation in ORACLE["evaluations"] for name in PAIRS]


@pytest.mark.parametrize(("name", "evaluation"), [c for c in CASES if c[0] in EMPTY])
def test_edge_cases_equal_the_official_evaluator(name, evaluation):
    assert _check(name, evaluation) > 0


@pytest.mark.slow
@pytest.mark.parametrize(("name", "evaluation"), [c for c in CASES if c[0] not in EMPTY])
def test_every_value_equals_the_official_evaluator(name, evaluation):
    assert _check(name, evaluation) > 0


def test_the_expected_values_cover_every_pair_and_the_edge_cases():
    results = ORACLE["results"]
    assert set(results) == {f"{name}/{evaluation}" for name, evaluation in CASES}
    assert {about["config"] for about in ORACLE["evaluations"].values()} >= {"gli", "MenRT", "ped", "mets", "GoAT"}
    both_empty = results["both-empty/gli"]["wt"]
    assert both_empty["global_dsc"] is None and both_empty["instance_f1"] is None and both_empty["instance_tp"] == 0
    missed = results["empty-prediction/gli"]["wt"]
    assert (missed["global_hd95_mm"], missed["lesionwise_hd95_mean_mm"], missed["instance_fn"]) == (373.0, "inf", 1)
    assert results["empty-reference/gli"]["wt"]["instance_fp"] >= 1
    disjoint = results["disjoint-tumours/gli"]["wt"]
    assert disjoint["instance_tp"] == 0 and disjoint["instance_fp"] > 0 and disjoint["instance_fn"] > 0
    assert disjoint["global_dsc"] == 0.0 and disjoint["global_hd95_mm"] == HD95_PENALTY_MM
    assert results["two-tumours/gli"]["wt"]["instance_tp"] >= 2
    assert results["second-tumour-missed/gli"]["wt"]["instance_fn"] >= 1
    assert results["second-tumour-false-positive/gli"]["wt"]["instance_fp"] >= 1
    assert results["fg6692-scan-vs-isen/met"]["rc"]["instance_tp"] >= 1  # the cavity region has real lesions
    anisotropic, isotropic = (results[f"fg6692-scan-vs-isen/{e}"]["wt"] for e in ("gli-anisotropic", "gli"))
    assert anisotropic["global_hd95_mm"] == isotropic["global_hd95_mm"]  # the official global metrics: voxels
    assert anisotropic["lesionwise_hd95_mean_mm"] != isotropic["lesionwise_hd95_mean_mm"]
    # the metastases variant: large and small lesions, detected, partly found and missed, and a false positive
    small = results["small-lesions/met"]["et"]
    assert (small["small_instance_tp"], small["small_instance_fn"], small["small_instance_fp"]) == (2, 2, 1)
    assert small["large_instance_tp"] == 2 and small["lesionwise_dsc_mean"] != small["instance_tp"]
    stricter = results["small-lesions/met-thresholds"]["et"]
    assert (stricter["large_instance_tp"], stricter["small_instance_fn"]) == (1, 3)
    assert results["reference-without-et/met"]["et"]["large_instance_f1"] is None  # no reference lesion: NaN


def test_regions_are_those_of_each_official_configuration():
    for evaluation, about in ORACLE["evaluations"].items():
        assert sorted(region for region, _ in CHALLENGES[about["challenge"]].regions) == sorted(about["regions"])
        assert CHALLENGES[about["challenge"]].config == about["config"], evaluation


def test_two_empty_masks_and_surface_distances():
    empty, cube = np.zeros((8, 8, 8), bool), np.zeros((8, 8, 8), bool)
    cube[2:5, 2:5, 2:5] = True
    nothing = region_scores(empty, empty)
    assert math.isnan(nothing.global_dsc) and math.isnan(nothing.instance_f1) and nothing.instance_tp == 0
    same = region_scores(cube, cube)
    assert (same.global_dsc, same.global_nsd, same.global_hd95_mm, same.instance_f1) == (1.0, 1.0, 0.0, 1.0)
    from_cube, to_cube = border_distances(cube, cube)
    assert from_cube.size == to_cube.size == 26 and not from_cube.any()  # the 3x3x3 cube's centre is inside


def _save_pair(tmp_path, prediction, reference, spacing=(1.0, 1.0, 1.0)):
    affine = np.diag([*spacing, 1.0])
    paths = []
    for name, array in (("p.nii.gz", prediction), ("r.nii.gz", reference)):
        nib.save(nib.Nifti1Image(np.asarray(array, np.uint8), affine), str(tmp_path / name))
        paths.append(str(tmp_path / name))
    return paths


def test_evaluate_command_writes_the_brats2025_columns(tmp_path, capsys):
    prediction, reference = PAIRS["du7294-hnf-vs-isen"]
    files = _save_pair(tmp_path, prediction, reference)
    out = tmp_path / "brats2025.csv"
    assert main(["evaluate", *files, "-o", str(out), "--scheme", "brats2025"]) == 0, capsys.readouterr().err
    rows = list(csv.DictReader(out.open()))
    assert tuple(rows[0]) == Brats2025Row.COLUMNS
    assert [r["region"] for r in rows] == ["wt", "tc", "et", "netc", "snfh", "rc"]
    expected = ORACLE["results"]["du7294-hnf-vs-isen/gli"]
    for row in rows:
        if row["region"] == "rc":
            assert row["global_dsc"] == "nan" and row["instance_tp"] == "0"
            continue
        assert abs(float(row["global_dsc"]) - expected[row["region"]]["global_dsc"]) < 1e-5
        assert int(row["instance_fp"]) == expected[row["region"]]["instance_fp"]
    assert "Wrote 6 rows" in " ".join(capsys.readouterr().err.split())
    assert main(["evaluate", *files, "-o", str(out), "--scheme", "brats2025", "--force"]) == 0  # btk's: replaced


def test_a_brats2021_prediction_is_converted_when_named():
    prediction, reference = PAIRS["fg6692-scan-vs-isen"]
    as_2021 = np.array([0, 1, 2, 4], np.uint8)[prediction]
    settings = EvaluationSettings("brats2025", "gli")
    converted = evaluate_arrays(as_2021, reference, prediction_labels="brats2021", settings=settings)
    native = evaluate_arrays(prediction, reference, settings=settings)
    assert repr(converted) == repr(native)  # (NaN for the empty cavity region)


@pytest.mark.parametrize(
    ("options", "arrays", "message"),
    [
        (["--challenge", "ssa"], None, "no configuration for the 'ssa' challenge"),
        # a 2021 map's 4 (ET) is not a label of GoAT's configuration (1, 2, 3)
        (["--challenge", "goat"], "2021", "which the BraTS 2025 GoAT configuration does not define"),
        # glioma labels 2 and 3 are not labels of the radiotherapy configuration (1)
        (["--challenge", "men-rt"], None, "which the BraTS 2025 MenRT configuration does not define"),
        # a cystic component has no glioma label
        (["--pred-labels", "brats2024-ped"], "ped", "which brats2024-post cannot represent"),
    ],
)
def test_bad_input_is_one_clear_error_and_no_csv(tmp_path, options, arrays, message, capsys):
    prediction, reference = PAIRS["fg6692-scan-vs-isen"]
    if arrays == "2021":
        prediction = np.array([0, 1, 2, 4], np.uint8)[prediction]
    if arrays == "ped":
        prediction = np.array([0, 3, 4, 1], np.uint8)[prediction]  # NCR painted as a cystic component
    files = _save_pair(tmp_path, prediction, reference)
    out = tmp_path / "out.csv"
    assert main(["evaluate", *files, "-o", str(out), "--scheme", "brats2025", *options]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert message in err and "Traceback" not in err and not out.exists()


def test_settings_are_checked_in_the_python_api():
    with pytest.raises(BtkError, match="no configuration for the 'ssa' challenge"):
        EvaluationSettings("brats2025", "ssa")
    assert EvaluationSettings("brats2025", "men-rt").columns == Brats2025Row.COLUMNS
    rows = evaluate_arrays(
        np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8), settings=EvaluationSettings("brats2025", "men")
    )
    assert [r.region for r in rows] == ["wt", "tc", "et"]
    assert all(math.isnan(r.dice) and r.instance_tp == r.instance_fp == r.instance_fn == 0 for r in rows)


def test_a_map_that_may_be_numbered_as_in_2021_is_read_as_2025_with_a_warning():
    import logging

    warnings = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: warnings.append(record.getMessage())
    logging.getLogger("btk").addHandler(handler)
    seg = np.zeros((6, 6, 6), np.uint8)
    seg[1:3, 1:3, 1:3], seg[3:5, 3:5, 3:5] = 2, 4  # oedema and a 4 without any 3
    try:
        rows = evaluate_brats2025(seg, seg, challenge="gli")
    finally:
        logging.getLogger("btk").removeHandler(handler)
    assert any("read as a resection cavity" in w and "--pred-labels brats2021" in w for w in warnings)
    assert {r.region: r.global_dsc for r in rows}["rc"] == 1.0


def test_the_metastases_thresholds_are_options_of_the_met_challenge_only(tmp_path, capsys):
    prediction, reference = _save_pair(tmp_path, *PAIRS["small-lesions"])
    out = tmp_path / "mets.csv"
    code = main(
        [
            *("evaluate", str(prediction), str(reference), "-o", str(out), "--scheme", "brats2025"),
            *("--challenge", "met", "--mets-volume-threshold", "30", "--mets-overlap-threshold", "0.5"),
        ]
    )
    assert code == 0
    with out.open(newline="") as handle:
        rows = {row["region"]: row for row in csv.DictReader(handle)}
    expected = ORACLE["results"]["small-lesions/met-thresholds"]["et"]
    assert float(rows["et"]["large_instance_tp"]) == expected["large_instance_tp"]
    assert float(rows["et"]["lesionwise_dsc_mean"]) == pytest.approx(expected["lesionwise_dsc_mean"], abs=1e-6)
    for options, message in (
        (("--challenge", "gli", "--mets-volume-threshold", "30"), "metastases"),
        (("--challenge", "met", "--mets-overlap-threshold", "1.5"), "mets-overlap-threshold"),
        (("--challenge", "met", "--mets-volume-threshold", "nan"), "mets-volume-threshold"),
    ):
        capsys.readouterr()
        bad = tmp_path / "bad.csv"
        assert (
            main(["evaluate", str(prediction), str(reference), "-o", str(bad), "--scheme", "brats2025", *options]) == 2
        )
        assert message in capsys.readouterr().err and not bad.exists()
