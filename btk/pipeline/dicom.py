"""Finding DICOM studies in a folder tree: files grouped by StudyInstanceUID, then by series.

Only headers are read (pixel data stay on disk; :mod:`btk.preprocess.dicom_headers`, which registers the
patient identifiers with the de-identification guard). Each series is given a modality from its description
and contrast tags (the Preprocessor's rules), so the manifest can say early which studies lack one; an
incomplete series (slices missing, unequal spacing) is given none, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from btk.modalities import MODALITIES


@dataclass
class DicomSeries:
    """One series of a study: its files and what it shows.

    Attributes:
        description: The description as it may be shown (acquisition words only, see :mod:`btk.deid`).
        problem: Why the series cannot be used (incomplete), or ``""``.
    """

    uid: str
    description: str
    number: str
    modality: str | None
    files: list[Path] = field(default_factory=list)
    problem: str = ""


@dataclass
class DicomStudy:
    """One study (StudyInstanceUID) with its series and the patient identifiers its headers hold.

    ``acquired`` (the StudyDate and StudyTime, ``YYYYMMDDHHMMSS``) and ``patients`` (the PatientIDs) are kept in
    memory only, for ordering one patient's visits; they are never shown or written.
    """

    uid: str
    series: dict[str, DicomSeries] = field(default_factory=dict)
    identifiers: set[str] = field(default_factory=set, repr=False)
    acquired: set[str] = field(default_factory=set, repr=False)
    patients: set[str] = field(default_factory=set, repr=False)

    @property
    def files(self) -> list[Path]:
        return [file for series in self.series.values() for file in series.files]

    def modalities(self) -> list[str]:
        """The MRI modalities recognised among the usable series, in BraTS order."""
        found = {series.modality for series in self.series.values() if not series.problem}
        return [m for m in MODALITIES if m in found]


def group_dicom_files(paths: Iterable[Path]):
    """Read the headers of DICOM files and group them by study, then series.

    Returns the MR studies and the unreadable files (:class:`btk.preprocess.dicom_headers.UnreadableFile`:
    marked as DICOM but not parseable, or without study and series identifiers).
    """
    from btk.preprocess.dicom_headers import read_series

    headers, unreadable = read_series(paths)
    studies: dict[str, DicomStudy] = {}
    for series in headers:
        if series.modality != "MR":
            continue
        study = studies.setdefault(series.study_uid, DicomStudy(series.study_uid))
        study.identifiers |= series.identifiers
        study.acquired |= {series.acquired} - {""}
        study.patients |= {series.patient} - {""}
        study.series[series.uid] = DicomSeries(
            series.uid,
            series.shown,
            "" if series.number is None else str(series.number),
            series_modality(series.description, series.contrast),
            sorted(series.files),
            series.problem(),
        )
    return list(studies.values()), unreadable


def series_modality(description: str, contrast: bool = False) -> str | None:
    """The modality (``t1n``, ``t1c``, ``t2w``, ``t2f``) a series description names, if any."""
    from btk.preprocess.modalities import modality_from_text

    return modality_from_text(description, contrast_agent=contrast)


def series_numbered(files: Iterable[Path], number: int | str) -> list[list[Path]]:
    """The files of each series among ``files`` whose SeriesNumber is ``number`` (headers only).

    More than one series may carry a number; the caller tells them apart (e.g. by their grid).
    """
    studies, _ = group_dicom_files(files)
    return [series.files for study in studies for series in study.series.values() if series.number == str(number)]
