"""The default flavour: majority voting with background, SIMPLE with working dropout, STAPLE, regions."""

import numpy as np
import pytest

from btk.errors import BtkError
from btk.evaluation.metrics import dice
from btk.fusion import Fusionator, SimpleParameters
from btk.fusion.simple import performance
from btk.labels import BRATS_2021, BRATS_2023, BRATS_2024_POST, convert
from tests.support.data import candidate_paths, save, sphere


def _voxels(*labels):
    """Candidates of one voxel each: _voxels(1, 1, 0) -> three 1x1x1 label maps."""
    return [np.full((1, 1, 1), label, np.uint8) for label in labels]


@pytest.mark.parametrize(
    "votes, weights, default, brats_toolkit",
    [
        ((1, 1, 0, 2, 4), None, 1, 0),  # plurality: background has one vote only; BraTS Toolkit needs half of all
        ((1, 1, 2, 2, 0), None, 2, 0),  # tie between NCR and ED goes to the outer class, ED
        ((1, 1, 0, 0), None, 0, 1),  # tie with background: background (BraTS Toolkit counts ties as foreground)
        ((4, 4, 1, 1), None, 1, 1),  # tie NCR/ET: NCR (outer) in both flavours
        ((4, 0, 0), (3, 1, 1), 4, 4),  # weights
        ((2, 0, 0), (1, 1, 1), 0, 0),
    ],
)
def test_majority_vote_rules(votes, weights, default, brats_toolkit):
    candidates = _voxels(*votes)
    assert Fusionator(labels="brats2021").fuse(candidates, "mav", weights).segmentation.item() == default
    assert Fusionator(flavour="brats-toolkit").fuse(candidates, "mav", weights).segmentation.item() == brats_toolkit


def test_majority_vote_tie_rule_in_the_2023_convention():
    # ED (2) before NCR (1) before ET (3)
    assert Fusionator().fuse(_voxels(3, 3, 1, 1), "mav").segmentation.item() == 1
    assert Fusionator().fuse(_voxels(3, 3, 2, 2), "mav").segmentation.item() == 2


def _tumour(shape, centre, radius, convention=BRATS_2021):
    seg = np.zeros(shape, np.uint8)
    seg[sphere(shape, centre, radius)] = convention.label_of("ED")
    seg[sphere(shape, centre, radius * 0.6)] = convention.label_of("NCR")
    seg[sphere(shape, centre, radius * 0.35)] = convention.label_of("ET")
    return seg


@pytest.fixture
def four_good_one_bad():
    shape = (40, 40, 40)
    good = [
        _tumour(shape, (20 + dx, 20, 20 + dz), 10 + dr) for dx, dz, dr in ((0, 0, 0), (1, 0, 0), (0, 1, 1), (-1, 0, -1))
    ]
    bad = np.zeros(shape, np.uint8)
    bad[0:6, 0:6, 0:6] = 4  # a spurious blob far from the tumour
    return good, bad


def test_simple_drops_a_failed_candidate_and_its_weight(four_good_one_bad):
    good, bad = four_good_one_bad
    # the failed candidate comes with a double weight: the weight must leave with it
    result = Fusionator().fuse([*good, bad], "simple", weights=[1, 1, 1, 1, 2])
    assert result.details["kept"] == [0, 1, 2, 3]
    history = result.details["history"]
    assert history[0]["scores"][4] < 0.05 * max(history[0]["scores"].values())
    assert not result.segmentation[0:6, 0:6, 0:6].any()
    unweighted_good = Fusionator().fuse(good, "mav").segmentation
    assert dice(result.segmentation > 0, unweighted_good > 0) > 0.95
    assert result.sidecar()["candidates"][4]["weight"] == 2.0


def test_simple_threshold_grows_every_iteration(four_good_one_bad):
    good, bad = four_good_one_bad
    result = Fusionator().fuse([*good, bad], "simple", parameters=SimpleParameters(0.1, 0.2, 4))
    for k, step in enumerate(result.details["history"]):
        best = max(step["scores"].values())
        assert step["threshold"] == pytest.approx((0.1 + 0.2 * k) * best)
    assert len(result.details["history"]) >= 2


def test_brats_toolkit_flavour_simple_never_drops(four_good_one_bad):
    good, bad = four_good_one_bad
    # with weights 1 the bad blob lacks a majority in both flavours; in BraTS Toolkit's it still counts as a candidate
    brats_toolkit = Fusionator(flavour="brats-toolkit").fuse([*good, bad], "simple")
    assert set(brats_toolkit.details["iterations"]) == {"1", "2", "4"}


def test_two_empty_masks_agree_perfectly():
    empty = np.zeros((5, 5, 5), np.uint8)
    assert performance(empty, empty, [1, 2, 4]) == 1.0


def test_all_empty_candidates_fuse_to_empty_for_every_method():
    empty = np.zeros((8, 8, 8), np.uint8)
    for method in ("mav", "simple", "staple"):
        assert not Fusionator().fuse([empty, empty, empty], method).segmentation.any()
    assert not Fusionator(flavour="brats-toolkit").fuse([empty, empty, empty], "simple").segmentation.any()


@pytest.mark.slow
def test_staple_agrees_with_majority_voting_on_real_candidates(fusion_case):
    paths = candidate_paths(fusion_case)
    staple = Fusionator().fuse(paths, "staple").segmentation
    mav = Fusionator().fuse(paths, "mav").segmentation
    assert dice(BRATS_2021.region_mask(staple, "WT"), BRATS_2021.region_mask(mav, "WT")) > 0.9
    assert set(np.unique(staple)) <= {0, 1, 2, 4}


def test_staple_refuses_weights():
    with pytest.raises(BtkError, match=r"STAPLE .* takes no weights"):
        Fusionator().fuse(_voxels(1, 1, 0), "staple", weights=[1, 2, 1])


@pytest.mark.parametrize("method", ["mav", "simple", "staple"])
@pytest.mark.slow
def test_region_fusion_is_the_same_in_both_conventions(fusion_case, method):
    paths = candidate_paths(fusion_case)
    old = Fusionator().fuse(paths, method, regions=True).segmentation
    new_candidates = [convert(a, BRATS_2021, BRATS_2023) for a in Fusionator().fuse(paths).candidates.arrays]
    new = Fusionator(labels="brats2023").fuse(new_candidates, method, regions=True).segmentation
    assert set(np.unique(new)) <= {0, 1, 2, 3}
    assert np.array_equal(convert(new, BRATS_2023, BRATS_2021), old)


def test_region_fusion_keeps_regions_nested():
    shape = (30, 30, 30)
    a = _tumour(shape, (15, 15, 15), 8)
    b = _tumour(shape, (15, 15, 15), 8)
    c = np.zeros(shape, np.uint8)
    c[sphere(shape, (15, 15, 15), 3)] = 4  # ET without any TC or WT around it
    for candidates in ([a, b, c], [c, c, a]):
        fused = Fusionator().fuse(candidates, "mav", regions=True).segmentation
        for inner, outer in (("ET", "TC"), ("TC", "WT")):
            assert not (BRATS_2021.region_mask(fused, inner) & ~BRATS_2021.region_mask(fused, outer)).any()


def test_region_fusion_keeps_the_resection_cavity():
    shape = (20, 20, 20)
    seg = _tumour(shape, (10, 10, 6), 4, BRATS_2024_POST)
    seg[sphere(shape, (10, 10, 15), 3)] = 4  # resection cavity
    fused = Fusionator(labels="brats2024-post").fuse([seg, seg, np.zeros(shape, np.uint8)], "mav", regions=True)
    assert np.array_equal(fused.segmentation, seg)


def test_brats_toolkit_flavour_region_fusion_refuses_the_2023_convention():
    with pytest.raises(BtkError, match="only knows the 0/1/2/4"):
        Fusionator(flavour="brats-toolkit").fuse(_voxels(3, 3, 1), "simple", regions=True)


def test_unknown_method_flavour_and_parameters_are_clear_errors():
    with pytest.raises(BtkError, match="unknown fusion method 'vote'"):
        Fusionator().fuse(_voxels(1, 1), "vote")
    with pytest.raises(BtkError, match="unknown flavour"):
        Fusionator(flavour="fast")
    with pytest.raises(BtkError, match="only apply to SIMPLE"):
        Fusionator().fuse(_voxels(1, 1), "mav", parameters=SimpleParameters(threshold=0.3))
    with pytest.raises(BtkError, match="2 weights for 3 candidates"):
        Fusionator().fuse(_voxels(1, 1, 1), "mav", weights=[1, 2])
    with pytest.raises(BtkError, match="not negative"):
        Fusionator().fuse(_voxels(1, 1), "mav", weights=[1, -1])


def test_weights_by_candidate_name(fusion_case):
    paths = candidate_paths(fusion_case)
    by_name = Fusionator().fuse(paths, "mav", weights={"isen-20": 3}).segmentation
    by_list = Fusionator().fuse(paths, "mav", weights=[1, 3, 1, 1, 1]).segmentation
    assert np.array_equal(by_name, by_list)
    with pytest.raises(BtkError, match="unknown candidates: nope"):
        Fusionator().fuse(paths, "mav", weights={"nope": 2})


def test_candidates_given_twice_or_copied_are_refused(tmp_path):
    seg = np.zeros((6, 6, 6), np.uint8)
    seg[2:4, 2:4, 2:4] = 2
    a, b = save(seg, tmp_path / "a.nii.gz"), save(seg, tmp_path / "b.nii.gz")
    with pytest.raises(BtkError, match="given twice"):
        Fusionator().fuse([a, a], "mav")
    with pytest.raises(BtkError, match="same content as"):
        Fusionator().fuse([a, b], "mav")
    # a caller who knows the files come from different algorithms may accept identical content
    assert Fusionator().fuse([a, b], "mav", allow_identical=True).segmentation.max() == 2


def test_identical_all_background_candidates_are_accepted(tmp_path):
    # several algorithms that found no tumour write byte-identical files: that is not a copy
    empty = [save(np.zeros((6, 6, 6), np.uint8), tmp_path / f"{name}.nii.gz") for name in "abc"]
    assert not Fusionator().fuse(empty, "mav").segmentation.any()


def test_converted_candidates_are_named_in_the_sidecar():
    seg = np.zeros((6, 6, 6), np.uint8)
    seg[1:5, 1:5, 1:5] = 2
    seg[2:4, 2:4, 2:4] = 4
    result = Fusionator().fuse([seg, seg, convert(seg, BRATS_2021, BRATS_2023)], "mav", names=["a", "b", "c"])
    assert result.convention is BRATS_2021
    sidecar = result.sidecar()
    assert sidecar["label_conversions"] == {"c": "brats2023 -> brats2021"}
    assert [c["label_convention"] for c in sidecar["candidates"]] == ["brats2021", "brats2021", "brats2023"]
    np.testing.assert_array_equal(result.segmentation, seg)
