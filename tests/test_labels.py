import numpy as np
import pytest

from btk.errors import BtkError
from btk.labels import (
    BRATS_2021,
    BRATS_2023,
    BRATS_2024_POST,
    CONVENTIONS,
    convert,
    detect_convention,
    get_convention,
)


def test_region_masks_equal_numpy_isin():
    # the comparisons per label give np.isin's mask for every region of every convention, whatever the type
    segmentation = np.random.default_rng(5).integers(0, 256, (12, 10, 8)).astype(np.uint8)
    for convention in CONVENTIONS.values():
        for region in convention.region_names:
            expected = np.isin(segmentation.astype(np.int16), convention.region_labels(region))
            assert np.array_equal(convention.region_mask(segmentation, region), expected)
            assert np.array_equal(convention.region_mask(segmentation.astype(np.int16), region), expected)


def test_regions_are_nested_in_every_convention():
    assert BRATS_2021.region_labels("WT") == (1, 2, 4)
    assert BRATS_2021.region_labels("TC") == (1, 4)
    assert BRATS_2021.region_labels("ET") == (4,)
    assert BRATS_2023.region_labels("WT") == (1, 2, 3)
    assert BRATS_2023.region_labels("ET") == (3,)
    # the resection cavity is not tumour
    assert BRATS_2024_POST.region_labels("WT") == (1, 2, 3)
    assert 4 not in BRATS_2024_POST.region_labels("TC")


def test_convert_2021_to_2023_and_back_is_lossless():
    seg = np.array([[[0, 1, 2, 4]]], dtype=np.uint8)
    converted = convert(seg, "brats2021", "brats2023")
    assert converted.tolist() == [[[0, 1, 2, 3]]]
    assert np.array_equal(convert(converted, "2023", "2021"), seg)


def test_convert_refuses_a_resection_cavity_the_target_cannot_hold():
    seg = np.array([[[0, 4]]], dtype=np.uint8)
    with pytest.raises(BtkError, match="RC"):
        convert(seg, BRATS_2024_POST, BRATS_2021)


def test_validate_names_the_unknown_labels():
    with pytest.raises(BtkError, match="label values 3, 7 are not part of the brats2021"):
        BRATS_2021.validate(np.array([0, 1, 3, 7]))
    BRATS_2023.validate(np.array([0, 1, 2, 3]))


def test_detect_convention():
    assert detect_convention(np.array([0, 1, 2, 4])) is BRATS_2021
    assert detect_convention(np.array([0, 2, 3])) is BRATS_2023
    assert detect_convention([np.array([0, 3]), np.array([4])]) is BRATS_2024_POST


def test_get_convention_accepts_years_and_rejects_nonsense():
    assert get_convention("2019") is BRATS_2021
    assert get_convention("BraTS2023") is BRATS_2023
    with pytest.raises(BtkError, match="unknown label convention"):
        get_convention("brats1999")


def test_from_regions_paints_nested_regions():
    wt = np.array([1, 1, 1, 0, 0], bool)
    tc = np.array([0, 1, 1, 0, 0], bool)
    et = np.array([0, 0, 1, 0, 1], bool)  # the last ET voxel lies outside WT and TC
    seg = BRATS_2023.from_regions({"WT": wt, "TC": tc, "ET": et})
    assert seg.tolist() == [2, 1, 3, 0, 3]
    for region in ("WT", "TC", "ET"):
        inner = BRATS_2023.region_mask(seg, "ET")
        assert np.all(BRATS_2023.region_mask(seg, region)[inner])


def test_tie_order_goes_from_background_outwards_in():
    assert BRATS_2021.tie_order() == (0, 2, 1, 4)
    assert BRATS_2024_POST.tie_order() == (0, 4, 2, 1, 3)


def test_common_convention_detects_each_map_on_its_own():
    from btk.labels import common_convention

    old, new, plain = np.array([0, 1, 2, 4]), np.array([0, 1, 3]), np.array([0, 2])
    same = common_convention([old, old, plain], ["a", "b", "c"])
    assert same.target is BRATS_2021 and same.conversions == {} and same.detected == (BRATS_2021, BRATS_2021, None)
    mixed = common_convention([old, new, new], ["a", "b", "c"])  # pooled, 3 and 4 would say post-treatment
    assert mixed.target is BRATS_2023 and mixed.conversions == {0: BRATS_2021}
    assert common_convention([old, old, new], ["a", "b", "c"]).conversions == {2: BRATS_2023}
    assert common_convention([old, new], ["a", "b"]).target is BRATS_2023  # a tie: the current convention
    post = np.array([0, 3, 4])
    assert common_convention([new, post], ["a", "b"]).target is BRATS_2024_POST
    assert common_convention([plain, plain], ["a", "b"]).target is BRATS_2021


def test_common_convention_refuses_2021_next_to_post_treatment_naming_each():
    from btk.labels import common_convention

    with pytest.raises(BtkError, match=r"a: brats2021; b: brats2024-post; c: labels 0-2 only"):
        common_convention([np.array([0, 4]), np.array([3, 4]), np.array([0, 1])], ["a", "b", "c"])


@pytest.mark.parametrize(
    ("name", "same_as"),
    [
        ("brats2023-met", "brats2023"),
        ("brats2023-men", "brats2023"),
        ("brats2024-goat", "brats2023"),
        ("brats2025-met", "brats2024-post"),
    ],
)
def test_tracks_numbered_like_a_glioma_convention_are_its_aliases(name, same_as):
    # as the official 2025 evaluator's configurations number them (1 NETC, 2 SNFH, 3 ET [, 4 RC])
    assert get_convention(name) is get_convention(same_as)


@pytest.mark.parametrize("name", ["brats2024-ped", "brats2024-men-rt"])
def test_tracks_with_regions_of_their_own_are_not_taken_for_another(name):
    convention = get_convention(name)
    assert convention.name == name
    assert all(convention is not other for other in (BRATS_2021, BRATS_2023, BRATS_2024_POST))
