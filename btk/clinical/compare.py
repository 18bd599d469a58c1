"""Follow-up of one patient: how the tumour changed between exams, and the response category.

The exams are btk results on the BraTS grid (the same atlas space, so a voxel is the same place in every
exam). Per region, each follow-up's volume is compared with the baseline (the first exam): change in ml and
%. Foci are compared with the exam before: a focus that overlaps none of that exam's region is *new*, one
of that exam that overlaps none of the follow-up's region has *vanished*. The RANO sum of products is
compared with the baseline.

The response category follows the volumetric equivalents of the RANO thresholds (Ellingson et al. 2017,
modified RANO), on the enhancing tumour (the convention's ET region; the outermost
region for conventions without one, as the output says):

- complete response (CR): the enhancing tumour has disappeared (it was there at baseline);
- partial response (PR): its volume fell by at least 65 % from baseline;
- progressive disease (PD): its volume grew by at least 40 % from the smallest volume so far (the nadir),
  or a new focus appeared;
- stable disease (SD): otherwise.

+40 % and -65 % are the volumes of a sphere whose bidimensional product grows by 25 % or falls by 50 %,
RANO's bidimensional thresholds (1.25^1.5 = 1.40, 0.5^1.5 = 0.35). Only the images are assessed: RANO's
clinical conditions (steroid dose, clinical status, confirmation scans) are not.

For a post-operative exam (BraTS 2024 post-treatment labels: a resection cavity, none at baseline) of a
pre-operative baseline, the extent of resection of the enhancing tumour is ``(pre - residual) / pre``, and
the resection class is RANO resect's (:func:`resection_class`, :data:`RESECTION_SOURCE`) from the residual
contrast-enhancing tumour (ET) and the residual non-contrast-enhancing tumour, taken as the rest of the whole
tumour (WT minus ET: the non-enhancing tumour core and the FLAIR hyperintensity, which RANO resect measures
the non-enhancing tumour on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from btk.clinical.exam import tumour_box
from btk.clinical.foci import Foci, find_foci
from btk.labels import LabelConvention, get_convention
from btk.spaces import SPACES

#: Volume growth from the nadir that is progression (%).
PROGRESSION_PERCENT = 40.0
#: Volume fall from baseline that is a partial response (%).
PARTIAL_RESPONSE_PERCENT = -65.0
SOURCE = (
    "volumetric equivalents of RANO (+40 % volume progression from nadir, -65 % partial response from baseline, "
    "disappearance complete response): Ellingson BM, Wen PY, Cloughesy TF. Modified criteria for radiographic "
    "response assessment in glioblastoma clinical trials. Neurotherapeutics 2017;14(2):307-320. "
    "doi:10.1007/s13311-016-0507-6"
)
RESECTION_SOURCE = (
    "RANO resect classes (residual contrast-enhancing (CE) and non-CE tumour in cm3): 1 supramaximal CE resection "
    "(0 CE, <= 5 non-CE), 2A complete CE resection (0 CE, > 5 non-CE), 2B near total CE resection (<= 1 CE), "
    "3A subtotal CE resection (<= 5 CE), 3B partial CE resection (> 5 CE), 4 biopsy (no reduction): Karschnia P "
    "et al. Prognostic validation of a new classification system for extent of resection in "
    "glioblastoma: a report of the RANO resect group. Neuro Oncol 2023;25(5):940-954. doi:10.1093/neuonc/noac193"
)


def resection_class(pre_ce_ml: float, residual_ce_ml: float, residual_non_ce_ml: float) -> str:
    """The RANO resect class of a resection (:data:`RESECTION_SOURCE`); volumes in ml (= cm³)."""
    if residual_ce_ml >= pre_ce_ml:
        return "4"  # biopsy: no reduction of the enhancing tumour
    if residual_ce_ml == 0:
        return "1" if residual_non_ce_ml <= 5 else "2A"
    if residual_ce_ml <= 1:
        return "2B"
    return "3A" if residual_ce_ml <= 5 else "3B"


@dataclass(frozen=True)
class Exam:
    """One exam of the series.

    Attributes:
        name: How it is called in the outputs (its study's name).
        segmentation: Its fused label map on the BraTS grid.
        findings: Its clinical measures (``clinical.json``).
    """

    name: str
    segmentation: np.ndarray
    findings: dict[str, Any]


@dataclass(frozen=True)
class RegionChange:
    """One region of one follow-up against the baseline."""

    region: str
    baseline_ml: float
    volume_ml: float
    change_ml: float
    change_percent: float | None


@dataclass(frozen=True)
class FollowUp:
    """One follow-up exam against the baseline (volumes, product) and the exam before (foci).

    Attributes:
        exam: Its name.
        regions: Per region, the change from baseline.
        new_foci_ml: The volumes of the foci of the outermost region that are new since the exam before.
        vanished_foci_ml: The volumes of that exam's foci that are gone.
        product_mm2: The RANO sum of products of the measurable enhancing lesions.
        product_change_mm2, product_change_percent: Against the baseline's (percent None when it was 0).
        response: ``CR``, ``PR``, ``SD`` or ``PD``.
        reason: Why, in words.
        extent_of_resection_percent: For a post-operative exam (a resection cavity, none at baseline) of a
            pre-operative baseline: ``(baseline ET - residual ET) / baseline ET`` in %; else None.
        resection_class: For such an exam, its RANO resect class (:func:`resection_class`); else None.
    """

    exam: str
    regions: tuple[RegionChange, ...]
    new_foci_ml: tuple[float, ...]
    vanished_foci_ml: tuple[float, ...]
    product_mm2: float
    product_change_mm2: float
    product_change_percent: float | None
    response: str
    reason: str
    extent_of_resection_percent: float | None = None
    resection_class: str | None = None


@dataclass(frozen=True)
class Comparison:
    """The series: baseline, each follow-up, and the rules used."""

    labels: str
    exams: tuple[str, ...]
    response_region: str
    volumes_ml: dict[str, tuple[float, ...]]
    follow_ups: tuple[FollowUp, ...]
    source: str = SOURCE
    resection_source: str = RESECTION_SOURCE

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``compare.json``)."""
        return {"btk_compare": True, **asdict(self)}

    def csv_rows(self) -> list[list[Any]]:
        """``exam, region, measure, value, unit`` rows, header first."""
        rows: list[list[Any]] = [["exam", "region", "measure", "value", "unit"]]
        for region, volumes in self.volumes_ml.items():
            rows += [[exam, region, "volume", round(v, 2), "ml"] for exam, v in zip(self.exams, volumes)]
        for follow in self.follow_ups:
            for change in follow.regions:
                rows.append([follow.exam, change.region, "change from baseline", round(change.change_ml, 2), "ml"])
                if change.change_percent is not None:
                    rows.append(
                        [follow.exam, change.region, "change from baseline", round(change.change_percent, 1), "%"]
                    )
            rows.append([follow.exam, "-", "new foci", len(follow.new_foci_ml), "count"])
            rows.append([follow.exam, "-", "vanished foci", len(follow.vanished_foci_ml), "count"])
            rows.append(
                [follow.exam, self.response_region, "RANO sum of products", round(follow.product_mm2, 1), "mm2"]
            )
            rows.append([follow.exam, self.response_region, "response", follow.response, ""])
            if follow.extent_of_resection_percent is not None:
                rows.append(
                    [follow.exam, "ET", "extent of resection", round(follow.extent_of_resection_percent, 1), "%"]
                )
                rows.append([follow.exam, "-", "RANO resect class", follow.resection_class, ""])
        return rows


def percent_change(before: float, after: float) -> float | None:
    """``(after - before) / before`` in %, None when ``before`` is 0."""
    return None if before == 0 else 100.0 * (after - before) / before


def response_category(baseline_ml: float, nadir_ml: float, volume_ml: float, new_foci: int) -> tuple[str, str]:
    """The volumetric RANO category and its reason (see the module's docstring)."""
    growth = percent_change(nadir_ml, volume_ml)
    if new_foci:
        return "PD", f"{new_foci} new focus/foci"
    if nadir_ml == 0 and volume_ml > 0:
        return "PD", "enhancing tumour appeared where there was none"
    if growth is not None and growth >= PROGRESSION_PERCENT:
        return "PD", f"volume +{growth:.0f} % from the nadir ({nadir_ml:.2f} ml)"
    if baseline_ml > 0 and volume_ml == 0:
        return "CR", "the enhancing tumour has disappeared"
    fall = percent_change(baseline_ml, volume_ml)
    if fall is not None and fall <= PARTIAL_RESPONSE_PERCENT:
        return "PR", f"volume {fall:.0f} % from baseline"
    return "SD", "neither -65 % from baseline nor +40 % from the nadir"


def compare_exams(exams: Sequence[Exam]) -> Comparison:
    """Compare the exams of one patient, the first being the baseline.

    Raises:
        ValueError: fewer than two exams, or exams of different label conventions or grids (callers turn it
            into a user error naming the exam).
    """
    if len(exams) < 2:
        raise ValueError("a comparison needs a baseline and at least one follow-up")
    convention = get_convention(exams[0].findings["labels"])
    regions = convention.region_names
    response_region = "ET" if "ET" in regions else regions[0]
    volumes = {region: tuple(_volume(exam, region) for exam in exams) for region in regions}
    products = [float(exam.findings["rano"]["sum_of_products_mm2"]) for exam in exams]
    follow_ups = []
    nadir = volumes[response_region][0]
    for index in range(1, len(exams)):
        new, vanished = _foci_changes(exams[index - 1], exams[index], convention)
        current = volumes[response_region][index]
        response, reason = response_category(volumes[response_region][0], nadir, current, len(new))
        nadir = min(nadir, current)
        follow_ups.append(
            FollowUp(
                exam=exams[index].name,
                regions=tuple(
                    RegionChange(
                        region,
                        volumes[region][0],
                        volumes[region][index],
                        volumes[region][index] - volumes[region][0],
                        percent_change(volumes[region][0], volumes[region][index]),
                    )
                    for region in regions
                ),
                new_foci_ml=new,
                vanished_foci_ml=vanished,
                product_mm2=products[index],
                product_change_mm2=products[index] - products[0],
                product_change_percent=percent_change(products[0], products[index]),
                response=response,
                reason=reason,
                extent_of_resection_percent=_extent_of_resection(volumes, index),
                resection_class=_resection_class(volumes, index),
            )
        )
    return Comparison(convention.name, tuple(exam.name for exam in exams), response_region, volumes, tuple(follow_ups))


def _extent_of_resection(volumes: dict[str, tuple[float, ...]], index: int) -> float | None:
    """The extent of resection of the enhancing tumour, for a post-operative exam of a pre-operative baseline.

    Post-operative: the exam has a resection cavity (RC) and the baseline has none; the baseline must have
    enhancing tumour. The rule is the usual volumetric one, ``(pre - residual) / pre``, on the enhancing tumour.
    """
    if "RC" not in volumes or "ET" not in volumes:
        return None
    if volumes["RC"][0] > 0 or volumes["RC"][index] == 0 or volumes["ET"][0] == 0:
        return None
    return 100.0 * (volumes["ET"][0] - volumes["ET"][index]) / volumes["ET"][0]


def _resection_class(volumes: dict[str, tuple[float, ...]], index: int) -> str | None:
    """The RANO resect class of a post-operative exam of a pre-operative baseline (see :func:`_extent_of_resection`)."""
    if _extent_of_resection(volumes, index) is None or "WT" not in volumes:
        return None
    residual_ce = volumes["ET"][index]
    return resection_class(volumes["ET"][0], residual_ce, max(volumes["WT"][index] - residual_ce, 0.0))


def _volume(exam: Exam, region: str) -> float:
    for entry in exam.findings["regions"]:
        if entry["region"] == region:
            return float(entry["volume_ml"])
    raise ValueError(f"{exam.name} has no region {region}")


def _foci_changes(
    before: Exam, after: Exam, convention: LabelConvention
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(new foci, vanished foci) of the outermost region, by overlap, from ``before`` to ``after``."""
    region = convention.region_names[0]
    box = tumour_box(np.maximum(before.segmentation, after.segmentation))
    old = convention.region_mask(before.segmentation[box], region)
    new = convention.region_mask(after.segmentation[box], region)
    affine = SPACES["brats-sri24"].grid.affine
    appeared = _unmatched(find_foci(new, affine), old)
    gone = _unmatched(find_foci(old, affine), new)
    return appeared, gone


def _unmatched(foci: Foci, other: np.ndarray) -> tuple[float, ...]:
    """The volumes of the foci that overlap no voxel of ``other``."""
    touched = set(np.unique(foci.labels[other]).tolist()) - {0}
    return tuple(volume for number, volume in enumerate(foci.volumes_ml, start=1) if number not in touched)
