"""De-identification policy: what btk may keep from a DICOM header, and a guard on everything it writes or prints.

The policy has four parts, each a function or object of this module:

1. **Identifiers.** Whenever btk reads a DICOM header it collects the values of the identifying attributes
   (:data:`IDENTIFYING_ATTRIBUTES`: the patient's names, IDs and birth date, the accession number, the
   institution, the physicians and operators; person names also by their components) with
   :func:`identifiers_of` and registers them with the process-wide :data:`guard`.
2. **The guard.** :data:`guard` replaces every registered identifier by ``[redacted]`` in every console line
   (``btk.console``), log record (a filter on btk's logger) and text file btk writes (``btk.io``: JSON,
   CSV, HTML, text), so a free-text field that slips through anywhere is still caught.
3. **Pseudonyms.** Studies are named from a salted hash of their StudyInstanceUID (:func:`pseudonym`),
   never from the patient ID or a date; the salt is kept per output folder (:func:`output_salt`), so names
   are stable across runs into one output folder and cannot be linked between output folders.
4. **Allow-lists.** JSON sidecars keep acquisition keys only (:data:`SIDECAR_KEYS`, :func:`allowed_sidecar`),
   and a free-text series description is shown only by its acquisition words (:func:`acquisition_words`).
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import secrets
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: DICOM attributes whose values identify a patient, a visit or the people and place involved.
IDENTIFYING_ATTRIBUTES = (
    "PatientName",
    "PatientID",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientBirthDate",
    "PatientMotherBirthName",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "MilitaryRank",
    "IssuerOfPatientID",
    "AccessionNumber",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "ReferringPhysicianName",
    "ReferringPhysicianAddress",
    "PerformingPhysicianName",
    "RequestingPhysician",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord",
    "OperatorsName",
    "ScheduledPerformingPhysicianName",
    "StationName",
    "DeviceSerialNumber",
)
#: The attributes among them that hold person names: guarded by their components too (family, given name...).
PERSON_ATTRIBUTES = frozenset(
    {
        "PatientName",
        "OtherPatientNames",
        "PatientBirthName",
        "PatientMotherBirthName",
        "ReferringPhysicianName",
        "PerformingPhysicianName",
        "RequestingPhysician",
        "NameOfPhysiciansReadingStudy",
        "PhysiciansOfRecord",
        "OperatorsName",
        "ScheduledPerformingPhysicianName",
    }
)
#: Identifiers shorter than this are not guarded: they would match ordinary words and numbers everywhere.
MIN_IDENTIFIER_LENGTH = 3
#: What an identifier is replaced by.
REDACTED = "[redacted]"

#: JSON sidecar keys that describe the acquisition and nothing else; every other key is dropped.
SIDECAR_KEYS = frozenset(
    {
        "Modality",
        "MagneticFieldStrength",
        "ImagingFrequency",
        "Manufacturer",
        "ManufacturersModelName",
        "MRAcquisitionType",
        "ScanningSequence",
        "SequenceVariant",
        "ScanOptions",
        "PulseSequenceType",
        "ImageType",
        "SeriesNumber",
        "AcquisitionNumber",
        "SliceThickness",
        "SpacingBetweenSlices",
        "EchoTime",
        "RepetitionTime",
        "InversionTime",
        "FlipAngle",
        "EchoTrainLength",
        "PixelBandwidth",
        "PercentPhaseFOV",
        "PercentSampling",
        "PhaseEncodingDirection",
        "PhaseEncodingSteps",
        "AcquisitionMatrixPE",
        "ReconMatrixPE",
        "ParallelReductionFactorInPlane",
        "PartialFourier",
        "ImageOrientationPatientDICOM",
        "NonlinearGradientCorrection",
        "ConversionSoftware",
        "ConversionSoftwareVersion",
    }
)

#: Words a series description may show (acquisition vocabulary); any other word is left out of outputs.
ACQUISITION_WORDS = frozenset(
    {
        # modalities and weightings (the words btk.preprocess.modalities recognises, and more)
        "t1",
        "t1w",
        "t1n",
        "t1c",
        "t1ce",
        "t1gd",
        "t1post",
        "t1km",
        "t1cgd",
        "t2",
        "t2w",
        "t2f",
        "t2star",
        "t2tse",
        "flair",
        "fla",
        "tirm",
        "darkfluid",
        "dark",
        "fluid",
        "pd",
        "pdw",
        "dwi",
        "dti",
        "adc",
        "swi",
        "mprage",
        "spgr",
        "bravo",
        "tfl3d1",
        "tse2d1",
        "se2d1",
        "se2d1r",
        "tir2d1",
        "weighted",
        "native",
        "mra",
        "tof",
        # contrast
        "post",
        "pre",
        "gad",
        "gd",
        "ce",
        "c",
        "contrast",
        "postcontrast",
        "precontrast",
        "km",
        "gado",
        "gadolinium",
        "plus",
        # planes, dimensions and resolution
        "ax",
        "axial",
        "tra",
        "transversal",
        "transverse",
        "sag",
        "sagittal",
        "cor",
        "coronal",
        "obl",
        "oblique",
        "2d",
        "3d",
        "iso",
        "hr",
        "mrhr",
        "highres",
        "lowres",
        "thin",
        "thick",
        "mm",
        # sequence families and options
        "se",
        "tse",
        "fse",
        "gre",
        "ir",
        "spin",
        "echo",
        "gradient",
        "fast",
        "turbo",
        "space",
        "cube",
        "vibe",
        "fs",
        "fatsat",
        "fat",
        "sat",
        "mpr",
        "mip",
        "rec",
        "recon",
        "vol",
        "volume",
        "mt",
        "blade",
        "propeller",
        "cs",
        "sense",
        "grappa",
        "nd",
        "dis2d",
        "dis3d",
        "norm",
        "head",
        "brain",
        "mr",
        "mri",
        "seq",
        "scan",
        "localizer",
        "loc",
        "scout",
        "survey",
        "tumor",
        "tumour",
        "routine",
        "protocol",
    }
)


def identifiers_of(dataset: Any) -> set[str]:
    """The identifying values of a DICOM header (a pydicom ``Dataset``): whole values and name components.

    Person names give their whole value and each component (family, given, middle name, prefix, suffix);
    birth dates also their ISO form (``1958-03-12``). Values shorter than :data:`MIN_IDENTIFIER_LENGTH` are
    left out.
    """
    found: set[str] = set()
    for attribute in IDENTIFYING_ATTRIBUTES:
        value = dataset.get(attribute)
        if value is None or value == "":
            continue
        values = list(value) if _is_multi_value(value) else [value]
        for single in values:
            text = str(single).strip()
            found.add(text)
            if attribute in PERSON_ATTRIBUTES:
                found.update(part for part in re.split(r"[\^=\s,]+", text) if part)
            if attribute == "PatientBirthDate" and re.fullmatch(r"\d{8}", text):
                found.add(f"{text[:4]}-{text[4:6]}-{text[6:]}")
    return {value for value in found if len(value) >= MIN_IDENTIFIER_LENGTH}


def _is_multi_value(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"


class IdentifierGuard:
    """The identifiers this process has read, and the redaction of them from any text.

    Matching ignores case. Identifiers of five or more characters holding a letter are found anywhere
    (also inside longer words, e.g. a folder named ``MRN123_scan``); shorter or purely numeric ones only as
    whole words, so that they do not eat into ordinary words and numbers.
    """

    def __init__(self) -> None:
        self._identifiers: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    @property
    def identifiers(self) -> frozenset[str]:
        """Every identifier registered so far."""
        return frozenset(self._identifiers)

    def register(self, identifiers: Iterable[str]) -> None:
        """Guard these identifiers too, from now on, in everything this process prints or writes."""
        given = {i.strip() for i in identifiers if len(i.strip()) >= MIN_IDENTIFIER_LENGTH}
        new = {form for i in given for form in _written_forms(i)} - self._identifiers
        if not new:
            return
        with self._lock:
            self._identifiers |= new
            alternatives = [_alternative(i) for i in sorted(self._identifiers, key=len, reverse=True)]
            self._pattern = re.compile("|".join(alternatives), re.IGNORECASE)

    def clear(self) -> None:
        """Forget every identifier (for tests and long-lived processes that move to another patient)."""
        with self._lock:
            self._identifiers.clear()
            self._pattern = None

    def contains(self, text: str) -> bool:
        """Whether ``text`` holds a registered identifier."""
        pattern = self._pattern
        return pattern is not None and pattern.search(text) is not None

    def redact(self, text: str) -> str:
        """``text`` with every registered identifier replaced by ``[redacted]``."""
        pattern = self._pattern
        return text if pattern is None else pattern.sub(REDACTED, text)

    def redact_data(self, payload: Any) -> Any:
        """A copy of JSON-like data (dicts, lists, strings, paths) with identifiers redacted from its strings.

        Keys are redacted too (they may be names taken from files); numbers and other values pass unchanged.
        """
        if self._pattern is None:
            return payload
        if isinstance(payload, dict):
            return {self.redact_data(key): self.redact_data(value) for key, value in payload.items()}
        if isinstance(payload, (list, tuple)):
            return [self.redact_data(value) for value in payload]
        if isinstance(payload, (str, Path)):
            return self.redact(str(payload))
        return payload


def _written_forms(identifier: str) -> set[str]:
    """An identifier as it may appear in btk's files: as is, HTML-escaped and JSON-escaped (``\\u00fc``)."""
    return {identifier, html.escape(identifier), json.dumps(identifier)[1:-1]}


def _alternative(identifier: str) -> str:
    escaped = re.escape(identifier)
    if len(identifier) >= 5 and re.search(r"[^\W\d_]", identifier):
        return escaped
    return rf"(?<![0-9A-Za-z]){escaped}(?![0-9A-Za-z])"


#: The guard of this process: every DICOM header reader registers with it, console and writers consult it.
guard = IdentifierGuard()


def refuse_identifying_name(name: str, what: str) -> None:
    """Raise :class:`~btk.errors.InputError` if a name btk would put into file names holds a guarded identifier.

    Args:
        name: The name (e.g. a case identifier chosen by the user).
        what: What it is, for the message (``"the case identifier (--case-id or the output folder's name)"``).
    """
    if guard.contains(name):
        from btk.errors import InputError

        raise InputError(
            f"{what} holds a patient identifier read from the DICOM headers; it would reach file names",
            hint="choose a name that does not identify the patient, e.g. case-001",
        )


# ---- pseudonyms ---------------------------------------------------------------------------------------

#: Where an output folder keeps the salt of its study pseudonyms.
SALT_FILE = ".btk-pseudonym-salt"
_salts: dict[Path, str] = {}  # output folder -> salt made in this process but not yet written
_PROCESS_SALT = secrets.token_hex(16)  # for studies discovered without an output folder


def pseudonym(study_uid: str, salt: str | None = None, prefix: str = "study") -> str:
    """A study name that does not identify the patient: ``study-`` and 10 hex digits of a salted SHA-256.

    Args:
        study_uid: The StudyInstanceUID (or any stable key of the study).
        salt: The output folder's salt (:func:`output_salt`); without one, a salt of this process (names
            are then stable only within the process).
        prefix: The name's first word.
    """
    digest = hashlib.sha256(f"{salt or _PROCESS_SALT}\0{study_uid}".encode()).hexdigest()
    return f"{prefix}-{digest[:10]}"


def output_salt(output: str | Path) -> str:
    """The pseudonym salt of an output folder: the one stored there, else a new one (see :func:`save_salt`).

    Nothing is written here, so a command that stops before writing its outputs leaves nothing behind.
    """
    folder = Path(output).resolve()
    stored = _read_salt(folder)
    if stored:
        return stored
    return _salts.setdefault(folder, secrets.token_hex(16))


def save_salt(output: str | Path) -> None:
    """Store the salt :func:`output_salt` made for ``output`` (once; a stored salt is never replaced)."""
    folder = Path(output).resolve()
    salt = _salts.get(folder)
    if salt is None or _read_salt(folder):
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SALT_FILE
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another run stored one first: its names win from now on
        return
    with os.fdopen(handle, "w", encoding="ascii") as stream:
        stream.write(salt + "\n")


def _read_salt(folder: Path) -> str:
    try:
        return (folder / SALT_FILE).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


# ---- allow-lists ----------------------------------------------------------------------------------------


def allowed_sidecar(sidecar: dict, contrast_agent: bool | None = None) -> dict:
    """A sidecar reduced to :data:`SIDECAR_KEYS`; ``contrast_agent`` adds ``ContrastAgentRecorded`` (true/false)."""
    kept = {key: value for key, value in sidecar.items() if key in SIDECAR_KEYS}
    if contrast_agent is not None:
        kept["ContrastAgentRecorded"] = bool(contrast_agent)
    return guard.redact_data(kept)


def acquisition_words(text: str) -> str:
    """The words of a series description that belong to the acquisition vocabulary, in order.

    ``'MRHR T1 AX POST GAD Smith'`` -> ``'MRHR T1 AX POST GAD'``. Returns an empty string when no word is left.
    """
    words = re.split(r"[^A-Za-z0-9+]+", text)
    return " ".join(word for word in words if word.lower().strip("+") in ACQUISITION_WORDS or word == "+")
