"""DICOM to NIfTI with dcm2niix (PyPI ``dcm2niix``), anonymised, and recognition of the series' modalities.

File names are ``series<number>`` (never the patient or series description), the JSON sidecars are
anonymised by dcm2niix (``-ba y``) and scrubbed again of every identifying key, and the NIfTI text fields
are cleared, so no patient name, ID or birth date reaches the output.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from btk.console import logger
from btk.errors import BtkError, unwritable_folder
from btk.preprocess.modalities import Candidate, choose, recognise

#: Sidecar keys that could identify a patient or a visit; removed even if dcm2niix kept them.
IDENTIFYING_KEYS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "PatientWeight",
    "AccessionNumber", "StudyID", "StudyInstanceUID", "SeriesInstanceUID", "InstitutionName",
    "InstitutionAddress", "ReferringPhysicianName", "AcquisitionDateTime", "AcquisitionDate",
    "StudyDate", "SeriesDate", "ContentDate", "PatientBirthTime", "DeviceSerialNumber", "StationName",
)


@dataclass
class ConversionResult:
    """What ``convert_dicom`` found and made.

    Attributes:
        modalities: Recognised modality (``t1n``, ``t1c``, ``t2w``, ``t2f``) -> NIfTI path.
        series: Every converted series, recognised or not (path, description, modality, reason).
        notes: How ambiguities were resolved.
        patient_names: Patient names/IDs seen in the DICOM (kept in memory only, to check outputs).
    """

    modalities: dict[str, Path]
    series: list[Candidate]
    notes: list[str] = field(default_factory=list)
    patient_names: set[str] = field(default_factory=set, repr=False)

    def summary(self) -> list[dict]:
        """A JSON-friendly list of the series (no identifying data)."""
        return [
            {"file": c.path.name, "series_number": c.series_number, "description": c.text,
             "modality": c.modality, "reason": c.reason}
            for c in self.series
        ]


def dcm2niix_version() -> str:
    """Version of the dcm2niix binary."""
    import dcm2niix

    return str(getattr(dcm2niix, "__version__", "unknown"))


def is_dicom_file(path: Path) -> bool:
    """Whether a file starts like a DICOM Part 10 file (``DICM`` after the 128-byte preamble)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def find_dicom_files(folder: Path) -> list[Path]:
    """All DICOM files under ``folder`` (any nesting; other files are ignored)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_dicom_file(p))


def convert_dicom(dicom_dir: str | Path, output_dir: str | Path) -> ConversionResult:
    """Convert every DICOM series under ``dicom_dir`` to NIfTI in ``output_dir`` and recognise the modalities.

    Returns:
        The recognised modality -> NIfTI map and the list of all series found.
    Raises:
        BtkError: no DICOM files, or dcm2niix failed / produced nothing.
    """
    import dcm2niix

    dicom_dir, output_dir = Path(dicom_dir), Path(output_dir)
    if not dicom_dir.is_dir():
        raise BtkError("not a folder", path=dicom_dir, hint="give the folder holding the DICOM files")
    dicom_files = find_dicom_files(dicom_dir)
    if not dicom_files:
        raise BtkError("no DICOM files found in this folder (or its sub-folders)", path=dicom_dir)
    series_tags = _series_tags(dicom_files)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise unwritable_folder(output_dir, error, creating=True) from None
    command = [dcm2niix.bin, "-z", "y", "-b", "y", "-ba", "y", "-i", "y", "-f", "series%s", "-o", str(output_dir),
               str(dicom_dir)]
    logger.info("Converting %d DICOM files with dcm2niix", len(dicom_files))
    run = subprocess.run(command, capture_output=True, text=True)
    logger.debug("dcm2niix: %s", run.stdout.strip())
    niftis = sorted(output_dir.glob("*.nii.gz"))
    if run.returncode != 0 and not niftis:
        raise BtkError(f"dcm2niix could not convert the DICOM files: {_last_error(run)}", path=dicom_dir)
    if not niftis:
        raise BtkError("dcm2niix found no convertible image series", path=dicom_dir)
    patient_names = {name for tags in series_tags.values() for name in tags["identities"]}
    candidates = []
    for nifti in niftis:
        _scrub_nifti(nifti)
        sidecar = _read_scrubbed_sidecar(nifti.with_name(nifti.name[: -len(".nii.gz")] + ".json"))
        number = sidecar.get("SeriesNumber")
        tags = series_tags.get(number, {})
        names = dict.fromkeys(str(sidecar.get(k, "")).strip() for k in ("SeriesDescription", "ProtocolName"))
        text = " / ".join(name for name in names if name)
        header = nib.load(str(nifti)).header
        candidate = Candidate(
            path=nifti,
            text=text or nifti.name,
            series_number=number,
            voxel_volume=float(np.prod(header.get_zooms()[:3])),
            parameters=sidecar,
        )
        candidates.append(recognise(candidate, contrast_agent=tags.get("contrast", False)))
    chosen, notes = choose(candidates)
    for candidate in candidates:
        logger.info("Series %s %r -> %s", candidate.series_number, candidate.text, candidate.modality or "not used")
    return ConversionResult({m: c.path for m, c in chosen.items()}, candidates, notes, patient_names)


def _series_tags(files: list[Path]) -> dict[int | None, dict]:
    """Per series number: whether a contrast agent is recorded, and the patient identities seen."""
    import pydicom

    tags: dict[int | None, dict] = {}
    for path in files:
        try:
            dataset = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as error:  # noqa: BLE001 - any unreadable file: dcm2niix will report it too
            logger.warning("Skipping unreadable DICOM file %s (%s)", path, error)
            continue
        number = dataset.get("SeriesNumber")
        entry = tags.setdefault(int(number) if number is not None else None, {"contrast": False, "identities": set()})
        entry["contrast"] |= bool(str(dataset.get("ContrastBolusAgent", "")).strip())
        for key in ("PatientName", "PatientID"):
            value = str(dataset.get(key, "")).strip()
            if value:
                entry["identities"].add(value)
    return tags


def _read_scrubbed_sidecar(path: Path) -> dict:
    if not path.exists():
        return {}
    sidecar = json.loads(path.read_text(encoding="utf-8"))
    if any(key in sidecar for key in IDENTIFYING_KEYS):
        sidecar = {k: v for k, v in sidecar.items() if k not in IDENTIFYING_KEYS}
        path.write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    return sidecar


def _scrub_nifti(path: Path) -> None:
    """Clear the free-text fields of a NIfTI header (dcm2niix writes acquisition details there)."""
    image = nib.load(str(path))
    header = image.header
    if any(bytes(header[key]).strip(b"\0") for key in ("descrip", "aux_file", "db_name")):
        for key in ("descrip", "aux_file", "db_name"):
            header[key] = b""
        nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj), image.affine, header), str(path))


def _last_error(run: subprocess.CompletedProcess) -> str:
    lines = [line for line in (run.stderr + run.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {run.returncode}"
