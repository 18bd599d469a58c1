"""Label conventions of the BraTS challenges and the tumour regions each one declares.

=====================  ===============================================================================
``brats2021``          BraTS 2017-2021: 0 background, 1 necrosis / non-enhancing core (NCR/NET),
                       2 oedema (ED), 4 enhancing tumour (ET). Regions WT = {1, 2, 4}, TC = {1, 4}, ET.
``brats2023``          BraTS 2023 and later: 0, 1 NCR, 2 ED, 3 ET; the same regions.
``brats2024-post``     BraTS 2024 post-treatment gliomas: the 2023 labels plus 4 resection cavity (RC),
                       which is a region of its own (in no other one).
``brats2024-ped``      Paediatric tumours 2024 and 2025: 1 ET, 2 non-enhancing tumour (NET), 3 cystic
                       component (CC), 4 ED. Regions WT = {1, 2, 3, 4}, TC = {1, 2, 3}, CC, ET.
``brats2024-men-rt``   Meningioma radiotherapy 2024 and 2025: 1 gross tumour volume (GTV), one region.
=====================  ===============================================================================

The regions and label numbers are those of the official evaluator's configurations (PyPI
``brats-evaluation`` 0.0.10, ``configs/*.yaml``). Other tracks number their labels like a glioma convention:
metastases 2023, meningioma (2023, 2025) and GoAT (2024, 2025) use 1 NETC (non-enhancing tumour core),
2 SNFH (surrounding FLAIR hyperintensity), 3 ET with TC = {1, 3} and WT = {1, 2, 3}, which is ``brats2023``;
metastases 2025 add 4 RC, which is ``brats2024-post``. Their names (``brats2023-met``, ``brats2023-men``,
``brats2024-goat``, ``brats2025-met``) are aliases of those two.

Each convention lists its regions (:class:`Region`): fusion (label-wise and region-wise), agreement,
evaluation and reports work on whatever regions the convention declares. Conversions between conventions go
tissue class by tissue class and exist only where both name the class (a paediatric cystic component has no
glioma label: converting it is an error).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from btk.errors import InputError

#: The glioma regions, outermost first: what the U-Net predicts and BraTS Toolkit's fusion knows.
REGIONS: tuple[str, ...] = ("WT", "TC", "ET")

#: Every tissue class a convention may name, outer to inner. Two rules follow this order: a tie in
#: label-wise fusion never favours a class that comes later (see :mod:`btk.fusion`), and a label map built
#: from region masks paints the regions in the order of the class each paints, so inner regions end on top.
TISSUES: tuple[str, ...] = ("background", "RC", "ED", "NET", "NCR", "CC", "GTV", "ET")


@dataclass(frozen=True)
class Region:
    """A tumour region: the union of some tissue classes.

    Args:
        name: Short name, e.g. ``"TC"``.
        tissues: The tissue classes it is made of.
        paint: The class its voxels get when a label map is built from region masks: the part of the
            region that no region painted after it covers (``ED`` for the whole tumour).
    """

    name: str
    tissues: tuple[str, ...]
    paint: str


_GLIOMA_REGIONS = (
    Region("WT", ("NCR", "ED", "ET"), paint="ED"),
    Region("TC", ("NCR", "ET"), paint="NCR"),
    Region("ET", ("ET",), paint="ET"),
)


@dataclass(frozen=True)
class LabelConvention:
    """How the tissue classes of a brain tumour are numbered in a label map, and its regions.

    Args:
        name: Short identifier, e.g. ``"brats2021"``.
        description: One line for humans.
        tissues: Label value -> tissue class name (one of :data:`TISSUES`).
        regions: The regions evaluated, fused and reported, in the order they are shown.
    """

    name: str
    description: str
    tissues: dict[int, str] = field(hash=False)
    regions: tuple[Region, ...] = _GLIOMA_REGIONS

    def __post_init__(self) -> None:
        names = set(self.tissues.values())
        for region in self.regions:
            if region.paint not in region.tissues or not set(region.tissues) <= names:
                raise ValueError(f"{self.name}: region {region.name} names classes the convention lacks")

    @property
    def labels(self) -> tuple[int, ...]:
        """All valid values, background (0) included, ascending."""
        return (0, *sorted(self.tissues))

    @property
    def region_names(self) -> tuple[str, ...]:
        """The names of the regions, in the order they are shown (``("WT", "TC", "ET")`` for gliomas)."""
        return tuple(region.name for region in self.regions)

    def region(self, name: str) -> Region:
        """The region called ``name``; an :class:`InputError` listing the convention's regions otherwise."""
        for region in self.regions:
            if region.name == name:
                return region
        raise InputError(
            f"the {self.name} convention has no region {name!r}", hint=f"use one of {', '.join(self.region_names)}"
        )

    def label_of(self, tissue: str) -> int:
        """The value of a tissue class (``"ET"`` -> 4 in ``brats2021``)."""
        for value, name in self.tissues.items():
            if name == tissue:
                return value
        raise KeyError(f"{self.name} has no {tissue} label")

    def region_labels(self, region: str) -> tuple[int, ...]:
        """The label values that make up a region (``"TC"`` -> (1, 4) in ``brats2021``)."""
        wanted = self.region(region).tissues
        return tuple(sorted(value for value, name in self.tissues.items() if name in wanted))

    def region_mask(self, segmentation: np.ndarray, region: str) -> np.ndarray:
        """Boolean mask of a region in a label map of this convention."""
        mask = np.zeros(np.shape(segmentation), dtype=bool)
        for value in self.region_labels(region):  # a comparison per label: several times faster than np.isin
            mask |= segmentation == value
        return mask

    def tie_order(self) -> tuple[int, ...]:
        """Label values in the order ties are resolved: background first, then outer to inner classes."""
        return (0, *sorted(self.tissues, key=lambda value: TISSUES.index(self.tissues[value])))

    def from_regions(self, masks: Mapping[str, np.ndarray]) -> np.ndarray:
        """Build a label map from masks of the convention's regions (``{"WT": ..., "TC": ..., "ET": ...}``).

        Each region is painted with its :attr:`Region.paint` class, outer classes first (the order of
        :data:`TISSUES`), so the result is nested by construction: an ET voxel outside the given TC is still
        tumour core and whole tumour in the result. A region without a mask stays empty (the glioma regions
        of a post-treatment map leave it without a cavity).
        """
        if not masks:
            raise ValueError("from_regions needs at least one region mask")
        regions = [self.region(name) for name in masks]
        segmentation = np.zeros(np.shape(next(iter(masks.values()))), dtype=np.uint8)
        for region in sorted(regions, key=lambda r: TISSUES.index(r.paint)):
            segmentation[np.asarray(masks[region.name], dtype=bool)] = self.label_of(region.paint)
        return segmentation

    def classes_missing_for(self, other: LabelConvention) -> tuple[str, ...]:
        """The tissue classes of ``other`` that this convention has no label for (none: it can hold any
        map of ``other``, converted class by class)."""
        own = set(self.tissues.values())
        return tuple(name for name in other.tissues.values() if name not in own)

    def validate(self, segmentation: np.ndarray, source: str | Path | None = None) -> None:
        """Raise :class:`BtkError` if the label map holds values that are not labels of this convention."""
        unknown = sorted(values_present(segmentation) - set(self.labels))
        if unknown:
            shown = ", ".join(str(_plain_number(v)) for v in unknown[:10])
            raise InputError(
                f"label values {shown} are not part of the {self.name} convention "
                f"(valid: {', '.join(map(str, self.labels))})",
                path=source,
                hint="pick the convention the file was written in with --labels, or convert it first",
            )


def values_present(segmentation: np.ndarray) -> set:
    """The distinct values in a label map.

    Label maps are mostly background: counting only the labelled voxels of an 8-bit map is far faster than
    sorting the whole volume.
    """
    segmentation = np.asarray(segmentation)
    if segmentation.dtype != np.uint8:
        return set(np.unique(segmentation).tolist())
    labelled = segmentation[segmentation != 0]
    values = {int(v) for v in np.flatnonzero(np.bincount(labelled, minlength=256))}
    return values | {0} if labelled.size < segmentation.size else values


def _plain_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


BRATS_2021 = LabelConvention(
    "brats2021",
    "BraTS 2017-2021: 1 NCR/NET, 2 ED, 4 ET",
    {1: "NCR", 2: "ED", 4: "ET"},
)
BRATS_2023 = LabelConvention(
    "brats2023",
    "BraTS 2023+: 1 NCR, 2 ED, 3 ET",
    {1: "NCR", 2: "ED", 3: "ET"},
)
BRATS_2024_POST = LabelConvention(
    "brats2024-post",
    "BraTS 2024 post-treatment: 1 NETC, 2 SNFH, 3 ET, 4 RC",
    {1: "NCR", 2: "ED", 3: "ET", 4: "RC"},
    regions=(*_GLIOMA_REGIONS, Region("RC", ("RC",), paint="RC")),
)
BRATS_2024_PED = LabelConvention(
    "brats2024-ped",
    "BraTS 2024+ paediatric: 1 ET, 2 NET, 3 CC, 4 ED",
    {1: "ET", 2: "NET", 3: "CC", 4: "ED"},
    regions=(
        Region("WT", ("ET", "NET", "CC", "ED"), paint="ED"),
        Region("TC", ("ET", "NET", "CC"), paint="NET"),
        Region("CC", ("CC",), paint="CC"),
        Region("ET", ("ET",), paint="ET"),
    ),
)
BRATS_2024_MEN_RT = LabelConvention(
    "brats2024-men-rt",
    "BraTS 2024+ meningioma radiotherapy: 1 GTV",
    {1: "GTV"},
    regions=(Region("GTV", ("GTV",), paint="GTV"),),
)

CONVENTIONS: dict[str, LabelConvention] = {
    c.name: c for c in (BRATS_2021, BRATS_2023, BRATS_2024_POST, BRATS_2024_PED, BRATS_2024_MEN_RT)
}
_ALIASES = {
    "2017": "brats2021",
    "2018": "brats2021",
    "2019": "brats2021",
    "2020": "brats2021",
    "2021": "brats2021",
    "2023": "brats2023",
    "2024": "brats2024-post",
    # tracks numbered like a glioma convention (see the module's docstring)
    "2023-met": "brats2023",
    "2023-men": "brats2023",
    "2024-goat": "brats2023",
    "2025-met": "brats2024-post",
}


#: The conventions :func:`detect_convention` tells apart by the values of a map.
DETECTABLE: tuple[LabelConvention, ...] = (BRATS_2021, BRATS_2023, BRATS_2024_POST)
#: The conventions that maps of several conventions are written in, in order of preference: the numbering
#: of every BraTS challenge since 2023 first, BraTS 2017-2021's last.
_PREFERRED_TARGETS = (BRATS_2023, BRATS_2024_POST, BRATS_2024_PED, BRATS_2024_MEN_RT, BRATS_2021)


def holding_convention(conventions: Sequence[LabelConvention]) -> LabelConvention:
    """The convention to write label maps of these conventions in, each converted class by class.

    The first of brats2023, brats2024-post, brats2024-ped, brats2024-men-rt, brats2021 that has a label
    for every class of every one of them (brats2023 for 2021 and 2023 maps, brats2024-post once a cavity
    can occur); when none can hold them all, the one that holds the most of them (the first on a tie).
    """
    if not conventions:
        raise ValueError("holding_convention needs at least one convention")

    def held(target: LabelConvention) -> int:
        return sum(1 for convention in conventions if not target.classes_missing_for(convention))

    return max(_PREFERRED_TARGETS, key=held)


def labels_advice(conventions: Sequence[LabelConvention]) -> str:
    """What to tell a user whose maps of these conventions cannot all be written in the chosen one: the
    ``--labels`` that holds them all, or, when none does, to run them separately."""
    holder = holding_convention(conventions)
    if all(not holder.classes_missing_for(convention) for convention in conventions):
        return f"pass --labels {holder.name}"
    return "no one label convention holds all of them: run them in separate runs"


def get_convention(name: str | LabelConvention) -> LabelConvention:
    """Look up a convention by name (``"brats2023"``, ``"brats2024-ped"``, an alias such as ``"brats2023-met"``)
    or by year (``"2021"``)."""
    if isinstance(name, LabelConvention):
        return name
    key = _ALIASES.get(str(name).lower().removeprefix("brats"), str(name).lower())
    try:
        return CONVENTIONS[key]
    except KeyError:
        raise InputError(f"unknown label convention {name!r}", hint=f"use one of {', '.join(CONVENTIONS)}") from None


def read_in(convention: LabelConvention, segmentation: np.ndarray) -> LabelConvention:
    """The convention to read a map in when ``convention`` is the one wanted: the map's own glioma convention
    where values tell it (:func:`detect_convention`), else ``convention`` itself (a paediatric or radiotherapy
    map cannot be told from a glioma one by its values)."""
    return detect_convention(segmentation) if convention in DETECTABLE else convention


def detect_convention(segmentations: list[np.ndarray] | np.ndarray) -> LabelConvention:
    """Guess the glioma convention of one or several label maps from the values present.

    Only the glioma numberings can be told apart by their values (a paediatric or radiotherapy map must be
    named with ``--labels``). A 3 means BraTS 2023+, a 4 without a 3 means BraTS 2017-2021, 3 and 4 together
    the 2024 post-treatment convention. Maps holding only 0, 1 and 2 are ambiguous; they are read as BraTS
    2021, whose regions agree with BraTS 2023's for those labels.
    """
    arrays = segmentations if isinstance(segmentations, list) else [segmentations]
    present: set[int] = set()
    for array in arrays:
        present |= values_present(array)
    if 3 in present and 4 in present:
        return BRATS_2024_POST
    if 3 in present:
        return BRATS_2023
    return BRATS_2021


#: Label values that mean the same tissue in every convention: maps holding only these are ambiguous.
_SHARED_LABELS = frozenset({0, 1, 2})


@dataclass(frozen=True)
class CommonConvention:
    """How several label maps, each in a convention of its own, are read in one convention.

    Attributes:
        target: The convention all maps are read in (and the fused result is written in).
        detected: Per map, the convention detected from its own values, or None for a map holding only
            0, 1 and 2 (which mean the same in every convention).
        conversions: Index of each map that must be renumbered -> the convention it is converted from.
    """

    target: LabelConvention
    detected: tuple[LabelConvention | None, ...]
    conversions: dict[int, LabelConvention]


def common_convention(segmentations: Sequence[np.ndarray], names: Sequence[str]) -> CommonConvention:
    """Detect the convention of each label map on its own and choose one convention to read them all in.

    The same per-map detection as :func:`detect_convention` (which ``btk run`` applies to each imported
    candidate); the values of different maps are never pooled, so a 2021 map (4 = ET) next to a 2023 map
    (3 = ET) is not mistaken for one post-treatment map (3 = ET, 4 = RC).

    * All maps in one convention (maps holding only 0, 1, 2 fit any): that convention, nothing converted.
    * BraTS 2023 next to BraTS 2024 post-treatment: 2024 post-treatment, nothing converted (its labels
      1, 2, 3 mean what they mean in 2023).
    * BraTS 2021 next to BraTS 2023: the maps of the minority convention are converted to the majority's
      (BraTS 2023 on a tie), tissue class by tissue class.
    * BraTS 2021 next to BraTS 2024 post-treatment: refused with a :class:`BtkError` that lists each map's
      convention, because label 4 means ET in one and RC in the other.
    """
    detected = tuple(
        None if values_present(array) <= _SHARED_LABELS else detect_convention(array) for array in segmentations
    )
    found = {convention for convention in detected if convention is not None}
    if BRATS_2021 in found and BRATS_2024_POST in found:
        listing = "; ".join(
            f"{name}: {convention.name if convention else 'labels 0-2 only'}"
            for name, convention in zip(names, detected)
        )
        raise InputError(
            f"the candidates mix label conventions that cannot be told apart ({listing}): "
            "label 4 is enhancing tumour in brats2021 but resection cavity in brats2024-post",
            hint="convert them to one convention first (btk.labels.convert), "
            "or pass --labels to say which one they all use",
        )
    if not found:
        return CommonConvention(BRATS_2021, detected, {})
    if found == {BRATS_2021, BRATS_2023}:
        counts = {c: sum(1 for d in detected if d is c) for c in (BRATS_2021, BRATS_2023)}
        target = BRATS_2021 if counts[BRATS_2021] > counts[BRATS_2023] else BRATS_2023
        conversions = {i: d for i, d in enumerate(detected) if d is not None and d is not target}
        return CommonConvention(target, detected, conversions)
    target = BRATS_2024_POST if BRATS_2024_POST in found else found.pop()
    return CommonConvention(target, detected, {})


def convert(segmentation: np.ndarray, source: str | LabelConvention, target: str | LabelConvention) -> np.ndarray:
    """Renumber a label map from one convention to another, tissue class by tissue class.

    Raises :class:`BtkError` if the map holds a class the target has no label for (a resection cavity
    converted to a pre-2024 convention).
    """
    source, target = get_convention(source), get_convention(target)
    source.validate(segmentation)
    result = np.zeros(segmentation.shape, dtype=np.uint8)
    for value, tissue in source.tissues.items():
        voxels = segmentation == value
        if not voxels.any():
            continue
        try:
            result[voxels] = target.label_of(tissue)
        except KeyError:
            raise InputError(
                f"the label map holds {tissue} (label {value}), which {target.name} cannot represent",
                hint=f"keep the {source.name} convention or remove label {value} first",
            ) from None
    return result
