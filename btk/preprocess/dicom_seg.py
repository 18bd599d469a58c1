"""A native-space label map as a DICOM Segmentation (SEG) object of its source series (``btk dicom-seg``).

The SEG (highdicom, from the ``pipeline`` extra) is written back for the PACS: it lives in the Frame of
Reference of the source series, references each of its images, and carries the patient and study identifiers of
that series' own study (copied from its headers, never invented; they reach no NIfTI, JSON or log). Of the
Patient and Study attributes highdicom copies, only those that identify the patient and the study are kept
(:data:`KEPT_PATIENT_AND_STUDY_ATTRIBUTES`); the free text (comments, history, descriptions), institutions,
physicians other than the referring one and other optional patient data are left out. It has one
segment per label of the label convention, coded with the standard's concepts
(:mod:`btk.preprocess.seg_concepts`) and shown in btk's colours; frames without a label are left out.

Binary segmentation (the SEG encoding every viewer reads): read back with highdicom, its segments give the
label map voxel for voxel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from btk import __version__
from btk.errors import InputError, MissingExtraError
from btk.io import atomic_path, guard_output, load_label_map
from btk.labels import LabelConvention, get_convention
from btk.preprocess.seg_concepts import TISSUE_CONCEPTS
from btk.preprocess.source_series import read_source_series, slice_plan

#: Equipment of the SEG: btk is software, it has no serial number (a value too short to be guarded).
MANUFACTURER = "btk"
MODEL_NAME = "btk-mri"
DEVICE_SERIAL_NUMBER = "0"
#: Series number of a SEG (high, so that it does not collide with the scanner's series).
SERIES_NUMBER = 9001
#: Content label (DICOM CS: upper case, at most 16 characters).
CONTENT_LABEL = "BTK_CONSENSUS"
#: The attributes of the Patient and Study information entities a SEG keeps from its source: what identifies
#: the patient and the study (the Patient and General Study modules' type 1 and 2 attributes). Everything
#: else of those entities that highdicom copies (free text, institutions, other people) is removed.
KEPT_PATIENT_AND_STUDY_ATTRIBUTES = frozenset(
    {
        "PatientName",
        "PatientID",
        "IssuerOfPatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
        "StudyID",
        "AccessionNumber",
    }
)

#: The institution of the source's equipment, which highdicom copies into the SEG (its equipment, and the
#: contributing equipment it records): removed.
SOURCE_INSTITUTION = ("InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName")


@dataclass(frozen=True)
class DicomSegResult:
    """What :func:`write_dicom_seg` wrote.

    Attributes:
        path: The SEG file.
        segments: Segment number -> (label value, segment label).
        frames: How many frames the SEG holds (one per segment and image where the segment is present).
        source_images: How many images of the source series it references.
    """

    path: Path
    segments: dict[int, tuple[int, str]]
    frames: int
    source_images: int


def write_dicom_seg(
    label_map: str | Path,
    source: str | Path | Sequence[Path],
    output: str | Path,
    labels: str | LabelConvention,
    colours: Mapping[int, tuple[tuple[int, int, int], str]],
    *,
    description: str = "btk consensus segmentation",
    series_number: int = SERIES_NUMBER,
    force: bool = False,
) -> DicomSegResult:
    """Write the label map as a DICOM SEG of the series it is on.

    Args:
        label_map: A label map on the grid of the source series (e.g. ``<study>_fused_native.nii.gz``).
        source: The source series: its folder, or its files (only DICOM files of that one series).
        output: The SEG file to write (atomically); never inside an input.
        labels: The label map's convention; one segment per label.
        colours: Label value -> (RGB colour, name), e.g. :func:`btk.report.colours.label_colours`.
        description: The SEG's series and content description (no patient data).
        series_number: The SEG's Series Number.
        force: Replace ``output`` if btk wrote it.

    Raises:
        BtkError: Not a label map or not of this convention, a source that is not one DICOM series, a series
            that does not match the label map's grid, an output in the way, or highdicom not installed.
    """
    convention = get_convention(labels)
    sources = [Path(source)] if isinstance(source, (str, Path)) else [Path(p) for p in source]
    # The headers first: their identifiers are then guarded in every message, paths included.
    series = read_source_series(sources[0] if isinstance(source, (str, Path)) else sources)
    output = guard_output(output, [label_map, *sources], force=force, replaceable=_is_btk_seg)
    hd = _highdicom()
    image, data = load_label_map(label_map)
    convention.validate(data, label_map)
    if data.ndim != 3:
        raise InputError(f"a {data.ndim}-D label map; expected one 3-D volume", path=label_map)
    plan = slice_plan(series, data.shape, image.affine)
    values = sorted(convention.tissues)
    numbers = np.zeros(256, dtype=np.uint8)
    numbers[values] = np.arange(1, len(values) + 1)
    frames = numbers[plan.frames(np.asarray(data, dtype=np.uint8))]  # label value -> segment number
    segments = [_segment(hd, number, value, convention, colours) for number, value in enumerate(values, start=1)]
    seg = hd.seg.Segmentation(
        source_images=[series.datasets[i] for i in plan.order],
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segments,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=MODEL_NAME,
        software_versions=__version__,
        device_serial_number=DEVICE_SERIAL_NUMBER,
        content_description=description[:64],
        content_label=CONTENT_LABEL,
        series_description=description[:64],
    )
    _keep_only_identifiers(seg)
    with atomic_path(output) as temporary:
        seg.save_as(temporary, enforce_file_format=True)
    return DicomSegResult(
        output,
        {number: (value, colours[value][1]) for number, value in enumerate(values, start=1)},
        int(seg.NumberOfFrames),
        len(series.datasets),
    )


def _keep_only_identifiers(seg) -> None:
    """Remove from the SEG every Patient and Study attribute but :data:`KEPT_PATIENT_AND_STUDY_ATTRIBUTES`, and
    the source's institution (the SEG's equipment is btk)."""
    from highdicom._standard_utils import get_iod_module_map, get_module_attribute_map, get_sop_class_iod_map

    modules = get_iod_module_map()[get_sop_class_iod_map()[seg.SOPClassUID]]
    attributes = get_module_attribute_map()
    for dataset in (seg, *seg.get("ContributingEquipmentSequence", [])):
        for keyword in SOURCE_INSTITUTION:
            if keyword in dataset:
                delattr(dataset, keyword)
    for module in modules:
        if module["ie"] not in ("Patient", "Study"):
            continue
        for item in attributes[module["key"]]:
            keyword = str(item["keyword"])
            if not item["path"] and keyword not in KEPT_PATIENT_AND_STUDY_ATTRIBUTES and keyword in seg:
                delattr(seg, keyword)


def _segment(hd, number: int, value: int, convention: LabelConvention, colours) -> object:
    """The description of the segment of one label: coded concepts, label, colour, the algorithm."""
    (red, green, blue), name = colours[value]
    category, property_type = TISSUE_CONCEPTS[convention.tissues[value]].codes()
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=name[:64],
        segmented_property_category=category,
        segmented_property_type=property_type,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="btk fusion",
            family=hd.sr.CodedConcept("123110", "DCM", "Artificial Intelligence"),
            version=__version__,
            source="btk",
        ),
        display_color=hd.color.CIELabColor.from_rgb(red, green, blue),
    )


def _highdicom():
    try:
        import highdicom
    except ImportError:
        raise MissingExtraError("highdicom is not installed (it writes DICOM SEG objects)", extra="pipeline") from None
    return highdicom


def _is_btk_seg(path: Path) -> bool:
    """Whether ``path`` is a DICOM SEG that btk wrote (the only kind of file ``--force`` may replace)."""
    import pydicom

    if path.is_symlink() or not path.is_file():
        return False
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality", "Manufacturer"])
    except Exception:  # an unreadable file is not recognisably btk's
        return False
    return header.get("Modality") == "SEG" and header.get("Manufacturer") == MANUFACTURER
