"""DICOM to NIfTI with dcm2niix (PyPI ``dcm2niix``), de-identified, and recognition of the series' modalities.

De-identification follows :mod:`btk.deid`: file names are ``series<number>`` (never the patient or the
series description), the JSON sidecars keep acquisition keys only (:data:`btk.deid.SIDECAR_KEYS`; no
description, comment, date, name or place), the NIfTI text fields are cleared, and descriptions are shown
only by their acquisition words. The identifiers read from the headers are registered with the guard.

A series that is not one complete volume (slices missing, unequal spacing) is converted but never used as
a modality; a note says why. The output folder must be new or empty, so that only this conversion's files
are considered (``btk convert --force`` replaces an earlier conversion: :mod:`btk.preprocess.convert`).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from btk.console import logger
from btk.deid import allowed_sidecar
from btk.errors import InputError, MissingFileError, OutputError, OutputExistsError, unwritable_folder
from btk.io import holds_free_text, open_nifti, scrub_free_text
from btk.modalities import DISPLAY_NAMES
from btk.preprocess.dicom_headers import DicomSeriesHeaders, is_dicom_file, read_series
from btk.preprocess.modalities import Candidate, choose, recognise

__all__ = ["ConversionResult", "convert_dicom", "dcm2niix_version", "find_dicom_files", "is_dicom_file"]


@dataclass
class ConversionResult:
    """What ``convert_dicom`` found and made.

    Attributes:
        modalities: Recognised modality (``t1n``, ``t1c``, ``t2w``, ``t2f``) -> NIfTI path.
        series: Every converted series, recognised or not (path, shown description, modality, reason).
        notes: How ambiguities were resolved, and which series were left out as incomplete.
        patient_names: Identifiers seen in the DICOM headers (kept in memory only, to check outputs).
    """

    modalities: dict[str, Path]
    series: list[Candidate]
    notes: list[str] = field(default_factory=list)
    patient_names: set[str] = field(default_factory=set, repr=False)

    def summary(self) -> list[dict]:
        """A JSON-friendly list of the series (no identifying data)."""
        return [
            {
                "file": c.path.name,
                "series_number": c.series_number,
                "description": c.text,
                "modality": c.modality,
                "reason": c.reason,
            }
            for c in self.series
        ]


def dcm2niix_version() -> str:
    """Version of the dcm2niix binary."""
    import dcm2niix

    return str(getattr(dcm2niix, "__version__", "unknown"))


def find_dicom_files(folder: Path) -> list[Path]:
    """All DICOM files under ``folder`` (any nesting; other files are ignored)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_dicom_file(p))


def convert_dicom(dicom_dir: str | Path, output_dir: str | Path) -> ConversionResult:
    """Convert every DICOM series under ``dicom_dir`` to NIfTI in ``output_dir`` and recognise the modalities.

    Args:
        dicom_dir: Folder of DICOM files (any nesting, several series, stray files).
        output_dir: Folder for the NIfTI files and sidecars; must be absent or empty.
    Returns:
        The recognised modality -> NIfTI map and the list of all series found.
    Raises:
        MissingFileError: ``dicom_dir`` does not exist.
        InputError: no DICOM files, or dcm2niix failed / produced nothing.
        OutputError: an output folder in the way (`OutputExistsError`: one that is not empty).
    """
    dicom_dir, output_dir = Path(dicom_dir), Path(output_dir)
    if not dicom_dir.is_dir():
        raise (MissingFileError if not dicom_dir.exists() else InputError)(
            "not a folder", path=dicom_dir, hint="give the folder holding the DICOM files"
        )
    _check_output(output_dir)
    dicom_files = find_dicom_files(dicom_dir)
    if not dicom_files:
        raise InputError("no DICOM files found in this folder (or its sub-folders)", path=dicom_dir)
    headers, unreadable = read_series(dicom_files)
    for bad in unreadable:
        logger.warning("Skipping %s: %s", bad.path, bad.reason)
    by_number: dict[int | None, list[DicomSeriesHeaders]] = {}
    for series in headers:
        by_number.setdefault(series.number, []).append(series)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise unwritable_folder(output_dir, error, creating=True) from None
    candidates, notes = _convert(dicom_dir, output_dir, len(dicom_files), by_number)
    chosen, choice_notes = choose(candidates)
    for candidate in candidates:
        logger.info("Series %s %r -> %s", candidate.series_number, candidate.text, candidate.modality or "not used")
    identifiers = {value for series in headers for value in series.identifiers}
    return ConversionResult({m: c.path for m, c in chosen.items()}, candidates, notes + choice_notes, identifiers)


def _convert(
    dicom_dir: Path, output_dir: Path, count: int, by_number: dict[int | None, list[DicomSeriesHeaders]]
) -> tuple[list[Candidate], list[str]]:
    """Run dcm2niix into ``output_dir``, de-identify what it wrote, and recognise each series."""
    import dcm2niix

    command = [
        dcm2niix.bin,
        "-z",
        "y",
        "-b",
        "y",
        "-ba",
        "y",
        "-i",
        "y",
        "-f",
        "series%s",
        "-o",
        str(output_dir),
        str(dicom_dir),
    ]
    logger.info("Converting %d DICOM files with dcm2niix", count)
    run = subprocess.run(command, capture_output=True, text=True)
    logger.debug("dcm2niix: %s", run.stdout.strip())
    niftis = sorted(output_dir.glob("*.nii.gz"))
    if run.returncode != 0 and not niftis:
        raise InputError(f"dcm2niix could not convert the DICOM files: {_last_error(run)}", path=dicom_dir)
    if not niftis:
        raise InputError("dcm2niix found no convertible image series", path=dicom_dir)
    for stray in set(output_dir.iterdir()) - set(niftis):  # only images and their sidecars are kept
        if stray.is_file() and stray.with_name(stray.name.removesuffix(".json") + ".nii.gz") not in niftis:
            stray.unlink()
    candidates, notes = [], []
    for nifti in niftis:
        _scrub_nifti(nifti)
        sidecar_path = nifti.with_name(nifti.name[: -len(".nii.gz")] + ".json")
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8")) if sidecar_path.exists() else {}
        number = sidecar.get("SeriesNumber", _number_in_name(nifti))  # dcm2niix's extra files have no sidecar
        group = by_number.get(number, [])
        contrast = any(series.contrast for series in group)
        sidecar = allowed_sidecar(sidecar, contrast)
        if sidecar_path.exists():
            sidecar_path.write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
        candidate, note = _recognise(nifti, open_nifti(nifti).header, number, group, sidecar, contrast)
        candidates.append(candidate)
        if note and note not in notes:  # dcm2niix may write several files of one series
            logger.warning(note)
            notes.append(note)
    return candidates, notes


def _recognise(
    path: Path, header, number: int | None, group: list[DicomSeriesHeaders], sidecar: dict, contrast: bool
) -> tuple[Candidate, str]:
    """The series' candidate, recognised from its description in memory, shown by its acquisition words only.

    An incomplete series is never a modality; the returned note says so when it looked like one.
    """
    description = " / ".join(dict.fromkeys(series.description for series in group if series.description))
    shown = " / ".join(dict.fromkeys(series.shown for series in group)) or path.name
    candidate = recognise(
        Candidate(
            path=path,
            text=description or path.name,
            series_number=number,
            voxel_volume=float(np.prod(header.get_zooms()[:3])),
            parameters=sidecar,
        ),
        contrast_agent=contrast,
    )
    if candidate.reason.startswith("name "):
        candidate.reason = f"series description {shown!r}"
    candidate.text = shown
    problem = "; ".join(dict.fromkeys(p for p in (series.problem() for series in group) if p))
    if not problem:
        return candidate, ""
    looked_like, candidate.modality, candidate.reason = candidate.modality, None, problem
    if looked_like is None:
        return candidate, ""
    return candidate, (
        f"series {number} {shown!r} looks like {DISPLAY_NAMES[looked_like]} but is not used: "
        f"{problem}; re-export the complete series from the scanner or PACS"
    )


def _number_in_name(nifti: Path) -> int | None:
    """The series number in a file name made by ``-f series%s`` (``series10_Eq_1.nii.gz`` -> 10)."""
    match = re.match(r"series(\d+)", nifti.name)
    return int(match.group(1)) if match else None


def _check_output(output_dir: Path) -> None:
    """The output folder must be absent or empty: only the files of this conversion may be considered."""
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError("the output exists and is not a folder", path=output_dir, hint="choose a folder name")
    if output_dir.is_dir() and any(output_dir.iterdir()):
        raise OutputExistsError(
            "the output folder is not empty",
            path=output_dir,
            hint="choose an empty folder, or pass --force to replace an earlier conversion",
        )


def _scrub_nifti(path: Path) -> None:
    """Clear the free-text fields of a NIfTI header (dcm2niix writes acquisition details there)."""
    image = open_nifti(path)
    header = image.header
    if holds_free_text(header):
        scrub_free_text(header)
        nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj), image.affine, header), str(path))


def _last_error(run: subprocess.CompletedProcess) -> str:
    lines = [line for line in (run.stderr + run.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {run.returncode}"
