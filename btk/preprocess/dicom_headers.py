"""Reading DICOM headers (pixel data stay on disk): files grouped into series, and whether a series is complete.

Every header read here registers its patient identifiers with :data:`btk.deid.guard`, so nothing btk prints
or writes afterwards can show them. Descriptions are kept in memory for recognising modalities; what may be
shown of them is :attr:`DicomSeriesHeaders.shown` (acquisition words only).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from btk.deid import IDENTIFYING_ATTRIBUTES, acquisition_words, guard, identifiers_of

#: The attributes read from each file (``specific_tags``: reading stops caring about everything else).
TAGS = [
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SeriesDescription",
    "ProtocolName",
    "Modality",
    "ContrastBolusAgent",
    "SeriesNumber",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "StudyDate",
    "StudyTime",
    *IDENTIFYING_ATTRIBUTES,
]
#: Relative spread of the distances between neighbouring slices above which a series is unevenly spaced.
SPACING_TOLERANCE = 0.05


@dataclass
class DicomSeriesHeaders:
    """What the headers of one series say.

    Attributes:
        uid: SeriesInstanceUID.
        study_uid: StudyInstanceUID.
        number: SeriesNumber (None when absent).
        description: SeriesDescription and ProtocolName, verbatim: in memory only, never shown or written.
        contrast: Whether a contrast agent is recorded (ContrastBolusAgent).
        modality: The DICOM Modality (``MR``, ``CT``, ...).
        files: The series' files.
        identifiers: The identifying values seen in the headers.
        acquired: When the study was made, ``YYYYMMDDHHMMSS`` from StudyDate and StudyTime (``""`` without a
            valid StudyDate): in memory only, for ordering a patient's visits; never shown or written.
        patient: The PatientID (``""`` when absent): in memory only, for telling whether studies are of one
            patient; never shown or written.
    """

    uid: str
    study_uid: str
    number: int | None
    description: str
    contrast: bool
    modality: str
    files: list[Path] = field(default_factory=list)
    identifiers: set[str] = field(default_factory=set, repr=False)
    acquired: str = field(default="", repr=False)
    patient: str = field(default="", repr=False)
    _positions: list[tuple[float, ...]] = field(default_factory=list, repr=False)
    _orientations: set[tuple[float, ...]] = field(default_factory=set, repr=False)

    @property
    def shown(self) -> str:
        """The description as it may be shown: its acquisition words, else ``series <number>``."""
        return acquisition_words(self.description) or (
            f"series {self.number}" if self.number is not None else f"series {self.uid[-6:]}"
        )

    def problem(self) -> str:
        """Why the series is not one complete volume (missing slices, unequal spacing), or ``""``."""
        if len(self._orientations) > 1:
            return "incomplete series: its images have different orientations"
        if len(self._positions) < 3 or not self._orientations:
            return ""  # a single image, or positions not recorded (e.g. multi-frame files): nothing to check
        orientation = np.array(next(iter(self._orientations)))
        normal = np.cross(orientation[:3], orientation[3:])
        distances = np.round(np.array(self._positions) @ normal, 3)
        slices, repeats = np.unique(distances, return_counts=True)
        if len(set(repeats.tolist())) > 1:  # several volumes (echoes, time points) must each have every slice
            return (
                f"incomplete series: {repeats.min()} image(s) at some slice positions and {repeats.max()} "
                "at others (images missing or repeated)"
            )
        if len(slices) < 3:
            return ""
        gaps = np.diff(slices)
        typical = float(np.median(gaps))
        if float(gaps.max() - gaps.min()) <= max(0.01, SPACING_TOLERANCE * typical):
            return ""
        if gaps.max() > 1.5 * typical:
            missing = round(float(gaps.max()) / typical) - 1
            return (
                f"incomplete series: {missing} slice(s) missing (a gap of {gaps.max():.1f} mm where slices "
                f"are {typical:.1f} mm apart)"
            )
        return f"incomplete series: slices unequally spaced ({gaps.min():.2f} to {gaps.max():.2f} mm apart)"


@dataclass
class UnreadableFile:
    """A file that looks like DICOM but cannot be used."""

    path: Path
    reason: str


def is_dicom_file(path: Path) -> bool:
    """Whether a file starts like a DICOM Part 10 file (``DICM`` after the 128-byte preamble)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def read_series(paths: Iterable[Path]) -> tuple[list[DicomSeriesHeaders], list[UnreadableFile]]:
    """Read the headers of the DICOM files among ``paths`` and group them by series.

    Files without the DICOM marker are ignored; marked files that cannot be parsed, or that lack study and
    series identifiers, are returned as unreadable with the reason. The identifiers of every header are
    registered with :data:`btk.deid.guard`.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    series: dict[str, DicomSeriesHeaders] = {}
    unreadable: list[UnreadableFile] = []
    for path in paths:
        if not is_dicom_file(path):
            continue
        try:
            with warnings.catch_warnings():  # pydicom warns about every oddity; unreadable files are reported
                warnings.simplefilter("ignore")
                header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=TAGS)
                identifiers = identifiers_of(header)
                guard.register(identifiers)
                study_uid = str(header.get("StudyInstanceUID", "") or "")
                series_uid = str(header.get("SeriesInstanceUID", "") or "")
                position = _floats(header.get("ImagePositionPatient"), 3)
                orientation = _floats(header.get("ImageOrientationPatient"), 6)
                number = _series_number(header.get("SeriesNumber"))
        except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError, AttributeError) as error:
            unreadable.append(UnreadableFile(path, f"cannot read the DICOM header ({guard.redact(str(error))})"))
            continue
        if not study_uid or not series_uid:
            unreadable.append(UnreadableFile(path, "the DICOM header has no StudyInstanceUID or SeriesInstanceUID"))
            continue
        entry = series.get(series_uid)
        if entry is None:
            texts = dict.fromkeys(
                str(header.get(key, "") or "").strip() for key in ("SeriesDescription", "ProtocolName")
            )
            entry = series[series_uid] = DicomSeriesHeaders(
                series_uid,
                study_uid,
                number,
                " / ".join(text for text in texts if text),
                False,
                str(header.get("Modality", "MR") or "MR"),
                acquired=acquisition_moment(header.get("StudyDate"), header.get("StudyTime")),
                patient=str(header.get("PatientID", "") or "").strip(),
            )
        entry.files.append(path)
        entry.identifiers |= identifiers
        entry.contrast |= bool(str(header.get("ContrastBolusAgent", "") or "").strip())
        if position is not None:
            entry._positions.append(position)
        if orientation is not None:
            entry._orientations.add(tuple(round(value, 4) for value in orientation))
    return list(series.values()), unreadable


def acquisition_moment(date, time) -> str:
    """``YYYYMMDDHHMMSS`` from a DICOM date (DA) and time (TM, possibly shortened to HH or HHMM); ``""`` when
    the date is not a valid DA value. The time defaults to midnight."""
    date_text = str(date or "").strip()
    if not re.fullmatch(r"\d{8}", date_text):
        return ""
    time_text = str(time or "").strip().split(".")[0]
    if not re.fullmatch(r"\d{2}(\d{2}){0,2}", time_text):
        time_text = ""
    return date_text + time_text.ljust(6, "0")


def _floats(value, count: int) -> tuple[float, ...] | None:
    """A DICOM multi-value of ``count`` numbers as floats, or None when absent or malformed."""
    if value is None:
        return None
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count and all(np.isfinite(numbers)) else None


def _series_number(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
