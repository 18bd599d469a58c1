"""Finding the four modality images of an exam: a folder of NIfTI files or of DICOM files, or explicit paths."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from btk.errors import InputError, MissingFileError
from btk.io import is_nifti, open_nifti, strip_nifti_suffix
from btk.modalities import DISPLAY_NAMES, MODALITIES, canonical
from btk.preprocess.dicom import ConversionResult, convert_dicom, find_dicom_files
from btk.preprocess.modalities import Candidate, choose, recognise


@dataclass
class ExamInputs:
    """The images to preprocess and how they were found.

    Attributes:
        images: Modality (``t1n``, ``t1c``, ``t2w``, ``t2f``) -> NIfTI path.
        source: ``"nifti"``, ``"dicom"`` or ``"explicit"``.
        candidates: Every image considered, with its recognised modality and the reason.
        notes: How ambiguities were resolved.
        patient_names: Identities seen in DICOM tags (never written; used to keep them out of outputs).
    """

    images: dict[str, Path]
    source: str
    candidates: list[Candidate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    patient_names: set[str] = field(default_factory=set, repr=False)


def normalise_overrides(modalities: Mapping[str, str | Path | None] | None) -> dict[str, Path]:
    """``{"t1": p, "flair": q}`` -> ``{"t1n": Path(p), "t2f": Path(q)}``; unknown keys are an error."""
    overrides: dict[str, Path] = {}
    for key, value in (modalities or {}).items():
        if value is None:
            continue
        modality = canonical(key)
        path = Path(value)
        if not path.is_file():
            raise MissingFileError(f"the {DISPLAY_NAMES[modality]} image given does not exist", path=path)
        overrides[modality] = path
    return overrides


def find_exam_inputs(
    exam: Path, overrides: dict[str, Path], conversion_dir: Path, required: Sequence[str] = MODALITIES
) -> ExamInputs:
    """The modality images of ``exam`` (at least the ``required`` ones: by default all four); DICOM series are
    converted into ``conversion_dir``.

    Raises:
        BtkError: the exam is empty, holds no images, or a required modality is missing (listing what was found).
    """
    exam = Path(exam)
    if set(required) <= set(overrides):
        return ExamInputs(dict(overrides), "explicit")
    if not exam.exists():
        raise MissingFileError("the exam folder does not exist", path=exam)
    if not exam.is_dir():
        raise InputError("the exam must be a folder of DICOM or NIfTI files", path=exam)
    files = [p for p in exam.rglob("*") if p.is_file() and not p.name.startswith(".")]
    if not files:
        raise InputError(
            "the exam folder is empty", path=exam, hint="give the folder holding the exam's DICOM or NIfTI files"
        )
    niftis = sorted(p for p in files if is_nifti(p))
    if niftis:
        candidates = [_nifti_candidate(path) for path in niftis]
        chosen, notes = choose(candidates)
        found = ExamInputs({m: c.path for m, c in chosen.items()}, "nifti", candidates, notes)
    elif find_dicom_files(exam):
        conversion: ConversionResult = convert_dicom(exam, conversion_dir)
        found = ExamInputs(
            conversion.modalities, "dicom", conversion.series, conversion.notes, conversion.patient_names
        )
    else:
        raise InputError(
            f"no NIfTI (.nii, .nii.gz) or DICOM files among the {len(files)} files of the exam folder",
            path=exam,
        )
    found.images.update(overrides)
    missing = [m for m in required if m not in found.images]
    if missing:
        raise InputError(
            f"missing {', '.join(DISPLAY_NAMES[m] for m in missing)}; found: {_found_list(found)}",
            path=exam,
            hint="name the files by modality (t1, t1c, t2, flair) or pass --t1/--t1c/--t2/--flair PATH",
        )
    return found


def _nifti_candidate(path: Path) -> Candidate:
    try:
        header = open_nifti(path).header
        voxel_volume = float(np.prod(header.get_zooms()[:3]))
    except Exception:
        voxel_volume = 0.0
    return recognise(Candidate(path=path, text=strip_nifti_suffix(path), voxel_volume=voxel_volume))


def _found_list(found: ExamInputs) -> str:
    if not found.candidates:
        return "nothing recognisable"
    return "; ".join(
        f"{c.path.name} -> {DISPLAY_NAMES[c.modality] if c.modality else c.reason or 'unrecognised'}"
        for c in found.candidates
    )
