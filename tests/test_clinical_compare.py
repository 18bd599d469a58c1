"""Follow-up: volume change, new and vanished foci and the volumetric RANO category, on constructed exams."""

from __future__ import annotations

import numpy as np
import pytest

from btk.clinical import measure_exam
from btk.clinical.compare import Exam, compare_exams, percent_change, resection_class, response_category
from btk.spaces import get_space
from tests.support.data import sphere


@pytest.mark.parametrize(
    ("baseline", "nadir", "volume", "new", "expected"),
    [
        (10.0, 10.0, 3.5, 0, "PR"),  # -65 % exactly
        (10.0, 10.0, 3.6, 0, "SD"),  # -64 %
        (10.0, 10.0, 0.0, 0, "CR"),
        (10.0, 5.0, 7.0, 0, "PD"),  # +40 % from the nadir exactly
        (10.0, 5.0, 6.9, 0, "SD"),  # +38 % from the nadir, -31 % from baseline
        (10.0, 10.0, 9.0, 1, "PD"),  # a new focus
        (0.0, 0.0, 0.5, 0, "PD"),  # enhancement where there was none
    ],
)
def test_volumetric_rano_thresholds(baseline, nadir, volume, new, expected):
    assert response_category(baseline, nadir, volume, new)[0] == expected


def test_percent_change():
    assert percent_change(10.0, 14.0) == pytest.approx(40.0)
    assert percent_change(0.0, 1.0) is None


def exam(name: str, spheres: list[tuple[tuple[int, int, int], float]]) -> Exam:
    """An exam on the BraTS grid whose tumour is enhancing spheres in oedema shells (brats2023 labels)."""
    segmentation = np.zeros(get_space("brats-sri24").grid.shape, dtype=np.uint8)
    region = (slice(90, 190), slice(90, 150), slice(60, 100))  # all spheres lie in it
    local = segmentation[region]
    for value, grow in ((2, 3), (3, 0)):
        for centre, radius in spheres:
            shifted = tuple(c - part.start for c, part in zip(centre, region))
            local[sphere(local.shape, shifted, radius + grow)] = value
    findings = measure_exam(segmentation, get_space("brats-sri24").grid.affine, "brats2023").to_dict()
    return Exam(name, segmentation, findings)


@pytest.mark.slow
def test_a_series_with_a_new_focus_then_a_vanished_one():
    baseline = exam("baseline", [((120, 120, 80), 8.0)])
    grown = exam("grown", [((120, 120, 80), 8.0), ((160, 120, 80), 6.0)])  # a second, new focus
    shrunk = exam("shrunk", [((160, 120, 80), 6.0)])  # the first one gone
    comparison = compare_exams([baseline, grown, shrunk])
    first, second = comparison.follow_ups
    assert comparison.response_region == "ET"
    assert len(first.new_foci_ml) == 1 and first.vanished_foci_ml == () and first.response == "PD"
    assert second.new_foci_ml == () and len(second.vanished_foci_ml) == 1
    et = {change.region: change for change in first.regions}["ET"]
    base_ml = baseline.findings["regions"][2]["volume_ml"]
    assert et.baseline_ml == base_ml and et.change_ml == pytest.approx(et.volume_ml - base_ml)
    assert et.change_percent == pytest.approx(100 * (et.volume_ml - base_ml) / base_ml)
    # the second follow-up's ET is the small sphere alone: -58 % from baseline, so stable
    assert second.response == "SD"
    rows = comparison.csv_rows()
    assert ["grown", "ET", "response", "PD", ""] in rows


def test_extent_of_resection_of_a_post_operative_exam():
    """brats2024-post: the pre-operative exam has no cavity; the post-operative one a cavity and residual ET."""
    pre = np.zeros(get_space("brats-sri24").grid.shape, dtype=np.uint8)
    pre[100:120, 100:120, 70:80] = 3  # 4 ml of enhancing tumour
    post = np.zeros_like(pre)
    post[100:120, 100:120, 70:79] = 4  # a cavity where it was ...
    post[100:120, 100:105, 79:80] = 3  # ... and 0.1 ml of residual enhancement
    exams = [
        Exam(name, m, measure_exam(m, get_space("brats-sri24").grid.affine, "brats2024-post").to_dict())
        for name, m in (("pre", pre), ("post", post))
    ]
    (follow,) = compare_exams(exams).follow_ups
    assert follow.extent_of_resection_percent == pytest.approx(100 * (4.0 - 0.1) / 4.0)
    assert follow.resection_class == "2B"  # 0.1 ml of residual enhancement, at most 1 cm3
    assert follow.response == "PR" and {c.region: c for c in follow.regions}["RC"].volume_ml == pytest.approx(3.6)


@pytest.mark.parametrize(
    ("pre_ce", "residual_ce", "residual_non_ce", "expected"),
    [
        (10.0, 0.0, 5.0, "1"),  # no enhancement left, at most 5 cm3 non-enhancing: supramaximal
        (10.0, 0.0, 5.01, "2A"),
        (10.0, 1.0, 30.0, "2B"),  # at most 1 cm3
        (10.0, 1.01, 0.0, "3A"),
        (10.0, 5.0, 0.0, "3A"),  # at most 5 cm3
        (10.0, 5.01, 0.0, "3B"),
        (10.0, 10.0, 0.0, "4"),  # no reduction: biopsy
        (3.0, 4.0, 0.0, "4"),
    ],
)
def test_rano_resect_classes_at_their_boundaries(pre_ce, residual_ce, residual_non_ce, expected):
    assert resection_class(pre_ce, residual_ce, residual_non_ce) == expected
