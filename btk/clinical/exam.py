"""Everything a neuroradiology report states about one exam's segmentation, as plain data.

:func:`measure_exam` measures each region of the label convention (volume in BraTS and native space, the three
largest orthogonal diameters, laterality, atlas location, foci), the RANO bidimensional product of the
enhancing region, multifocality and midline crossing. :class:`ClinicalFindings` is what the exam report,
``clinical.json`` and ``clinical.csv`` show.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from btk import __version__
from btk.clinical.foci import MERGE_DISTANCE_MM, MINIMUM_FOCUS_ML, find_foci
from btk.clinical.laterality import crosses_midline, laterality
from btk.clinical.location import ATLASES, OUTSIDE, LabelAtlas, hemispheres, load_atlas
from btk.clinical.rano import MEASURABLE_MM, BidimensionalMeasure, axial_axis, measure_lesions
from btk.clinical.size import principal_diameters_mm, volume_ml, voxel_volume_ml
from btk.io import atomic_path, save_json
from btk.labels import LabelConvention, get_convention
from btk.spaces import SPACES

#: The region RANO measures: the convention's enhancing tumour.
ENHANCING = "ET"
#: The atlas that names a focus's location.
FOCUS_ATLAS = "harvard_oxford"
DISCLAIMER = "For research use only; not for diagnosis or treatment decisions."


@dataclass(frozen=True)
class FocusFindings:
    """One focus of a region.

    Attributes:
        number: 1 for the largest.
        volume_ml: Its volume.
        centre_voxel: Its centre of mass, as voxel indices of the BraTS grid.
        side: ``"left"``, ``"right"`` or ``"bilateral"`` (None off the BraTS grid).
        crosses_midline: It has voxels in both hemispheres (None off the BraTS grid).
        structure: The Harvard-Oxford structure holding most of it (None off the BraTS grid).
    """

    number: int
    volume_ml: float
    centre_voxel: tuple[float, float, float]
    side: str | None
    crosses_midline: bool | None
    structure: str | None


@dataclass(frozen=True)
class RegionFindings:
    """The measures of one region.

    Attributes:
        region: Its name (``WT``, ``TC``, ``ET``, ...).
        volume_ml: Volume on the BraTS grid.
        native_volume_ml: Volume of the same region in the exam's native space (None: no native map).
        diameters_mm: Its three largest orthogonal diameters, largest first.
        left_percent, right_percent: Its share in each hemisphere (None off the BraTS grid or when empty).
        locations: Atlas key -> structure -> share of the region (%), largest first.
        foci: Its foci, largest first.
    """

    region: str
    volume_ml: float
    native_volume_ml: float | None
    diameters_mm: tuple[float, float, float]
    left_percent: float | None
    right_percent: float | None
    locations: dict[str, dict[str, float]]
    foci: tuple[FocusFindings, ...]


@dataclass(frozen=True)
class RanoFindings:
    """The RANO bidimensional measurement of the enhancing region.

    Attributes:
        region: The region measured (None: the convention has none).
        lesions: Every enhancing lesion's measurement, largest lesion first.
        sum_of_products_mm2: The sum of the products of the measurable lesions.
        note: Why nothing was measured, or empty.
    """

    region: str | None
    lesions: tuple[BidimensionalMeasure, ...]
    sum_of_products_mm2: float
    note: str = ""

    @property
    def measurable(self) -> tuple[BidimensionalMeasure, ...]:
        """The lesions RANO can measure (both diameters at least 10 mm, on two or more axial slices)."""
        return tuple(lesion for lesion in self.lesions if lesion.measurable)


@dataclass(frozen=True)
class ClinicalFindings:
    """What a neuroradiology report states about one segmentation.

    Attributes:
        labels: The label convention.
        regions: Per region, its measures.
        rano: The bidimensional measurement of the enhancing region.
        multifocal: The outermost region has more than one focus.
        midline_crossing: A focus of the outermost region lies in both hemispheres (None off the BraTS grid).
        on_brats_grid: Location and laterality were measured (they need the BraTS grid).
        atlases: The atlases used, with their licences and citations.
        rules: The thresholds used, for the record.
        disclaimer: The research-use statement every output carries.
    """

    labels: str
    regions: tuple[RegionFindings, ...]
    rano: RanoFindings
    multifocal: bool
    midline_crossing: bool | None
    on_brats_grid: bool
    atlases: tuple[dict[str, str], ...] = ()
    rules: dict[str, Any] = field(default_factory=dict)
    disclaimer: str = DISCLAIMER

    def to_dict(self) -> dict[str, Any]:
        """The findings as JSON-ready dictionaries (the content of ``clinical.json``, marked ``btk_clinical``)."""
        return {"btk_clinical": __version__, **asdict(self)}

    def csv_rows(self) -> list[list[Any]]:
        """The findings as ``region, measure, value, unit`` rows (``clinical.csv``), header first."""
        rows: list[list[Any]] = [["region", "measure", "value", "unit"]]
        for region in self.regions:
            name = region.region
            rows.append([name, "volume BraTS space", _round(region.volume_ml), "ml"])
            if region.native_volume_ml is not None:
                rows.append([name, "volume native space", _round(region.native_volume_ml), "ml"])
            rows += [[name, f"diameter {k + 1}", _round(d), "mm"] for k, d in enumerate(region.diameters_mm)]
            if region.left_percent is not None:
                rows.append([name, "share left hemisphere", _round(region.left_percent), "%"])
                rows.append([name, "share right hemisphere", _round(region.right_percent), "%"])
            rows.append([name, "foci", len(region.foci), "count"])
            for focus in region.foci:
                rows.append([name, f"focus {focus.number} volume", _round(focus.volume_ml), "ml"])
                if focus.structure is not None:
                    rows.append([name, f"focus {focus.number} location", f"{focus.side}: {focus.structure}", ""])
            for atlas, shares in region.locations.items():
                rows += [[name, f"{atlas}: {structure}", _round(share), "%"] for structure, share in shares.items()]
        region_name = self.rano.region or "-"
        for lesion in self.rano.lesions:
            prefix = f"RANO lesion {lesion.lesion}"
            rows.append([region_name, f"{prefix} longest diameter", _round(lesion.longest_mm), "mm"])
            rows.append([region_name, f"{prefix} perpendicular diameter", _round(lesion.perpendicular_mm), "mm"])
            rows.append([region_name, f"{prefix} product", _round(lesion.product_mm2), "mm2"])
            rows.append([region_name, f"{prefix} axial slice", lesion.slice_index, "index"])
            rows.append([region_name, f"{prefix} measurable", "yes" if lesion.measurable else "no", ""])
        if self.rano.region:
            rows.append(
                [region_name, "RANO sum of products (measurable)", _round(self.rano.sum_of_products_mm2), "mm2"]
            )
        rows.append(["-", "multifocal", "yes" if self.multifocal else "no", ""])
        if self.midline_crossing is not None:
            rows.append(["-", "crosses the midline", "yes" if self.midline_crossing else "no", ""])
        return rows


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)


def measure_exam(
    segmentation: np.ndarray,
    affine: np.ndarray,
    labels: str | LabelConvention,
    native: tuple[np.ndarray, np.ndarray] | None = None,
) -> ClinicalFindings:
    """Measure a segmentation the way a neuroradiology report does.

    Args:
        segmentation: The label map (BraTS grid for location and laterality; any grid for the rest).
        affine: Its voxel-to-world affine.
        labels: Its label convention.
        native: The same segmentation in the exam's native space (label map and affine), for native volumes.

    Returns:
        The findings.
    """
    convention = get_convention(labels)
    on_grid = SPACES["brats-sri24"].grid.holds(segmentation.shape, affine)
    box = tumour_box(segmentation)
    crop = segmentation[box]
    origin = np.array([part.start for part in box], dtype=np.float64)
    crop_affine = np.asarray(affine, dtype=np.float64).copy()
    crop_affine[:3, 3] += crop_affine[:3, :3] @ origin
    sides = hemispheres().labels[box] if on_grid else None
    atlases = {info.key: load_atlas(info.key).cropped(box) for info in ATLASES} if on_grid else {}
    native_counts = np.bincount(native[0].ravel(), minlength=256) if native is not None else None
    regions = []
    for name in convention.region_names:
        mask = convention.region_mask(crop, name)
        side = laterality(mask, sides) if sides is not None else None
        regions.append(
            RegionFindings(
                region=name,
                volume_ml=volume_ml(mask, affine),
                native_volume_ml=_native_volume(native_counts, native, convention, name),
                diameters_mm=principal_diameters_mm(mask, crop_affine),
                left_percent=side.left_percent if side else None,
                right_percent=side.right_percent if side else None,
                locations={key: atlas.shares(mask) for key, atlas in atlases.items()},
                foci=_foci(mask, crop_affine, origin, sides, atlases.get(FOCUS_ATLAS)),
            )
        )
    outer = regions[0]
    return ClinicalFindings(
        labels=convention.name,
        regions=tuple(regions),
        rano=_rano(crop, crop_affine, box, convention),
        multifocal=len(outer.foci) > 1,
        midline_crossing=any(bool(focus.crosses_midline) for focus in outer.foci) if on_grid else None,
        on_brats_grid=on_grid,
        atlases=tuple(
            {
                "key": info.key,
                "title": info.title,
                "source": info.source,
                "licence": info.licence,
                "citation": info.citation,
            }
            for info in ATLASES
        )
        if on_grid
        else (),
        rules={
            "focus_minimum_ml": MINIMUM_FOCUS_ML,
            "focus_merge_distance_mm": MERGE_DISTANCE_MM,
            "rano_measurable_mm": MEASURABLE_MM,
            "outside_label": OUTSIDE,
        },
    )


def tumour_box(segmentation: np.ndarray) -> tuple[slice, slice, slice]:
    """The bounding box of the labelled (non-zero) voxels, one voxel wider on each side (the first voxel for an
    empty map).

    Every measure is local to the tumour: working on this box rather than the whole grid is what keeps the
    clinical part of a report within a few seconds.
    """
    labelled = segmentation != 0
    box = []
    for axis in range(3):
        present = np.flatnonzero(np.any(labelled, axis=tuple(k for k in range(3) if k != axis)))
        if len(present) == 0:
            return (slice(0, 1), slice(0, 1), slice(0, 1))
        box.append(slice(max(int(present[0]) - 1, 0), min(int(present[-1]) + 2, segmentation.shape[axis])))
    return (box[0], box[1], box[2])


def _native_volume(
    counts: np.ndarray | None,
    native: tuple[np.ndarray, np.ndarray] | None,
    convention: LabelConvention,
    region: str,
) -> float | None:
    """A region's volume in the native map, from the map's voxel count per label value."""
    if counts is None or native is None:
        return None
    voxels = sum(int(counts[value]) for value in convention.region_labels(region) if value < len(counts))
    return voxels * voxel_volume_ml(native[1])


def _foci(
    mask: np.ndarray,
    affine: np.ndarray,
    origin: np.ndarray,
    sides: np.ndarray | None,
    atlas: LabelAtlas | None,
) -> tuple[FocusFindings, ...]:
    """The foci of a (cropped) region; ``origin``: the crop's first voxel on the whole grid."""
    found = find_foci(mask, affine)
    foci = []
    for number, volume in enumerate(found.volumes_ml, start=1):
        focus = found.labels == number
        centre = np.argwhere(focus).mean(axis=0) + origin
        side = laterality(focus, sides) if sides is not None else None
        foci.append(
            FocusFindings(
                number=number,
                volume_ml=volume,
                centre_voxel=(round(float(centre[0]), 1), round(float(centre[1]), 1), round(float(centre[2]), 1)),
                side=side.side if side else None,
                crosses_midline=crosses_midline(focus, sides) if sides is not None else None,
                structure=atlas.main_structure(focus) if atlas is not None else None,
            )
        )
    return tuple(foci)


def _rano(
    crop: np.ndarray, affine: np.ndarray, box: tuple[slice, slice, slice], convention: LabelConvention
) -> RanoFindings:
    if ENHANCING not in convention.region_names:
        return RanoFindings(
            None, (), 0.0, f"the {convention.name} convention has no enhancing-tumour region: no RANO measurement"
        )
    first_slice = box[axial_axis(affine)].start
    lesions = tuple(
        replace(lesion, slice_index=lesion.slice_index + first_slice)
        for lesion in measure_lesions(convention.region_mask(crop, ENHANCING), affine)
    )
    total = float(sum(lesion.product_mm2 for lesion in lesions if lesion.measurable))
    note = (
        ""
        if any(lesion.measurable for lesion in lesions)
        else "no measurable enhancing lesion (both diameters >= 10 mm, on two or more axial slices)"
    )
    return RanoFindings(ENHANCING, lesions, total, note)


def write_clinical_files(findings: ClinicalFindings, folder: Path) -> dict[str, Path]:
    """Write ``clinical.json`` and ``clinical.csv`` into ``folder`` (atomically); returns name -> file."""
    json_path, csv_path = folder / "clinical.json", folder / "clinical.csv"
    save_json(findings.to_dict(), json_path)
    with atomic_path(csv_path) as temporary, temporary.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(findings.csv_rows())
    return {"clinical_json": json_path, "clinical_csv": csv_path}
