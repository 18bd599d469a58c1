"""Finding DICOM studies in a folder tree: files grouped by StudyInstanceUID, then by series.

Only headers are read (pixel data stays on disk). Each series is given a modality from its description
and contrast tags (the Preprocessor's rules), so the manifest can say early which studies lack one.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_TAGS = ["StudyInstanceUID", "SeriesInstanceUID", "SeriesDescription", "ProtocolName", "PatientID", "StudyDate",
         "Modality", "ContrastBolusAgent", "SeriesNumber"]


@dataclass
class DicomSeries:
    """One series of a study: its files and what it shows."""

    uid: str
    description: str
    number: str
    modality: str | None
    files: list[Path] = field(default_factory=list)


@dataclass
class DicomStudy:
    """One study (StudyInstanceUID) with its series."""

    uid: str
    patient: str
    date: str
    series: dict[str, DicomSeries] = field(default_factory=dict)

    @property
    def files(self) -> list[Path]:
        return [file for series in self.series.values() for file in series.files]

    def modalities(self) -> list[str]:
        """The MRI modalities recognised among the series, in BraTS order."""
        found = {series.modality for series in self.series.values()}
        return [m for m in ("t1", "t1c", "t2", "flair") if m in found]


@dataclass
class UnreadableFile:
    """A file that looks like DICOM but cannot be read."""

    path: Path
    reason: str


def group_dicom_files(paths: Iterable[Path]) -> tuple[list[DicomStudy], list[UnreadableFile]]:
    """Read the headers of DICOM files and group them by study, then series.

    Files without the DICOM marker are ignored; marked files that cannot be parsed, or that lack study
    and series identifiers, are returned as unreadable with the reason.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    from btk.preprocess.dicom import is_dicom_file

    studies: dict[str, DicomStudy] = {}
    unreadable: list[UnreadableFile] = []
    for path in paths:
        if not is_dicom_file(path):
            continue
        try:
            with warnings.catch_warnings():  # pydicom warns about every oddity; unreadable files are reported
                warnings.simplefilter("ignore")
                header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_TAGS)
        except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as error:
            unreadable.append(UnreadableFile(path, f"cannot read the DICOM header ({error})"))
            continue
        study_uid = str(header.get("StudyInstanceUID", "") or "")
        series_uid = str(header.get("SeriesInstanceUID", "") or "")
        if not study_uid or not series_uid:
            unreadable.append(UnreadableFile(path, "the DICOM header has no StudyInstanceUID or SeriesInstanceUID"))
            continue
        if str(header.get("Modality", "MR") or "MR") != "MR":
            continue
        study = studies.setdefault(
            study_uid, DicomStudy(study_uid, str(header.get("PatientID", "") or ""), str(header.get("StudyDate", "") or ""))
        )
        series = study.series.get(series_uid)
        if series is None:
            description = str(header.get("SeriesDescription", "") or header.get("ProtocolName", "") or "")
            contrast = bool(str(header.get("ContrastBolusAgent", "") or "").strip())
            series = study.series[series_uid] = DicomSeries(
                series_uid, description, str(header.get("SeriesNumber", "") or ""), series_modality(description, contrast)
            )
        series.files.append(path)
    return list(studies.values()), unreadable


#: The Preprocessor's modality names -> the pipeline's.
PREPROCESSOR_NAMES = {"t1n": "t1", "t1c": "t1c", "t2w": "t2", "t2f": "flair"}


def series_modality(description: str, contrast: bool = False) -> str | None:
    """The modality (``t1``, ``t1c``, ``t2``, ``flair``) a series description names, if any."""
    from btk.preprocess.modalities import modality_from_text

    return PREPROCESSOR_NAMES.get(modality_from_text(description, contrast_agent=contrast) or "")
