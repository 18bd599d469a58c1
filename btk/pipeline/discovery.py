"""What a pipeline input holds: one exam, or many studies (DICOM trees and exam folders).

Kinds of study:

``dicom``
    A DICOM study (files grouped by StudyInstanceUID, then series), converted to NIfTI first. Its name is a
    pseudonym (:func:`btk.deid.pseudonym`: a salted hash of the StudyInstanceUID), never the patient's ID
    or a date; a file that looks like DICOM but cannot be read makes a study ``unreadable-<hash>``.
``nifti``
    A folder of NIfTI images in native scanner space, one per modality (file names ending ``_t1``,
    ``_t1c``, ``_t2``, ``_flair``/``_fla``, or BraTS style ``-t1n``, ``-t1c``, ``-t2w``, ``-t2f``).
``preprocessed``
    An exam already preprocessed by ``btk preprocess``: preprocessing is skipped.
``brats``
    Four modalities already on the grid of one atlas space (:mod:`btk.spaces`: the BraTS SRI24 grid,
    240 x 240 x 155, or the MNI152 grid, 182 x 218 x 182, both 1 mm): preprocessing is skipped and no
    native-space segmentation can be made. With a synthesis algorithm (:func:`with_synthesis`), three of
    them: the fourth is synthesised before the segmentation.

A ``brats`` or ``preprocessed`` study records its atlas space; a run whose algorithms expect another one
refuses the study before it starts (:func:`refuse_other_space`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from btk.deid import pseudonym
from btk.errors import BtkError, InputError, MissingFileError
from btk.io import is_nifti, open_nifti, strip_nifti_suffix
from btk.modalities import MODALITIES, SHORT_NAMES, modality_of_stem, short_names
from btk.pipeline.dicom import group_dicom_files
from btk.preprocess.exam import PreprocessedExam
from btk.spaces import get_space, space_of_grid


@dataclass(frozen=True)
class Study:
    """One study to process: where it comes from and what it holds.

    Args:
        name: Unique name; also the name of its output folder.
        kind: ``dicom``, ``nifti``, ``preprocessed`` or ``brats`` (see the module documentation).
        source: The exam folder, or for DICOM the folder holding most of the study's files.
        modalities: Modality (``t1n``, ``t1c``, ``t2w``, ``t2f``) -> image file (NIfTI kinds) or series
            description (DICOM).
        files: The DICOM files of a ``dicom`` study.
        problem: Why the study cannot be processed, when discovery already knows.
        identifiers: The patient identifiers its DICOM headers hold (in memory only: each process working
            on the study guards its outputs against them).
        missing: The modalities it lacks (``t1n``, ``t1c``, ``t2w``, ``t2f``); a study is processed with one
            missing only when it is to be synthesised (see :func:`with_synthesis`).
        space: The atlas space its images lie in (``brats`` and ``preprocessed`` studies; None for the others).
        visit: Its place among one patient's visits (1: the baseline; ``btk run --longitudinal``, see
            :mod:`btk.pipeline.visits`); 0 when the run is not of one patient's visits.
        acquired: When a ``dicom`` study was made (its StudyDate and StudyTime, ``YYYYMMDDHHMMSS``; ``""`` when
            unknown): in memory only, for ordering visits; never written.
        patient: A pseudonym of the patient of a ``dicom`` study (a salted hash of its PatientIDs; ``""``
            without one): in memory only, for telling whether visits are of one patient; never written.
    """

    name: str
    kind: str
    source: Path
    modalities: dict[str, str] = field(default_factory=dict)
    files: tuple[Path, ...] = ()
    problem: str = ""
    identifiers: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    missing: tuple[str, ...] = ()
    space: str | None = None
    visit: int = 0
    acquired: str = field(default="", repr=False, compare=False)
    patient: str = field(default="", repr=False, compare=False)


def refuse_other_space(study: Study, space: str) -> Study:
    """The study, refused (its ``problem`` set) when its images lie in another atlas space than ``space``."""
    if study.space is None or study.space == space or study.problem:
        return study
    grid = get_space(study.space).describe_grid()
    return replace(
        study,
        problem=f"its images are in the {study.space} space ({grid}), but the algorithms expect the {space} "
        "space: give the raw exam (it is then preprocessed to that space), or choose algorithms of its space",
    )


def discover(input_path: str | Path, salt: str | None = None) -> list[Study]:
    """Find the studies in ``input_path``: one exam folder, a DICOM tree, or a folder of both.

    Args:
        input_path: The exam or tree.
        salt: The salt of the DICOM studies' pseudonyms (:func:`btk.deid.output_salt` of the output folder);
            without one, names are stable only within this process.
    Raises :class:`BtkError` when the input does not exist or holds nothing that can be processed.
    """
    root = Path(input_path).resolve()
    if not root.exists():
        raise MissingFileError("input not found", path=root, hint="pass an exam folder or a folder of DICOM studies")
    if not root.is_dir():
        raise InputError("the input must be a folder (an exam, or a tree of studies)", path=root)
    studies: list[Study] = []
    dicom_files: list[Path] = []
    _walk(root, studies, dicom_files)
    dicom_studies, unreadable = group_dicom_files(dicom_files)
    for dicom_study in dicom_studies:
        files = dicom_study.files
        source = _common_folder(files)
        modalities = {s.modality: s.description for s in dicom_study.series.values() if s.modality and not s.problem}
        missing = [m for m in MODALITIES if m not in modalities]
        problem = (
            f"missing modality: no {short_names(missing)} series recognised among {_series_listing(dicom_study)}"
            if missing
            else ""
        )
        studies.append(
            Study(
                pseudonym(dicom_study.uid, salt),
                "dicom",
                source,
                {m: modalities[m] for m in MODALITIES if m in modalities},
                tuple(sorted(files)),
                problem,
                frozenset(dicom_study.identifiers),
                tuple(missing),
                acquired=min(dicom_study.acquired, default=""),
                patient=pseudonym("\0".join(sorted(dicom_study.patients)), salt, prefix="patient")
                if dicom_study.patients
                else "",
            )
        )
    for bad in unreadable:
        studies.append(
            Study(
                pseudonym(str(bad.path), salt, prefix="unreadable"),
                "dicom",
                bad.path.parent,
                {},
                (bad.path,),
                f"bad DICOM: {bad.path}: {bad.reason}",
            )
        )
    if not studies:
        raise InputError(
            "no exam or DICOM study found",
            path=root,
            hint="an exam folder holds one NIfTI image per modality (*_t1, *_t1c, *_t2, *_flair) or DICOM files",
        )
    return _unique_names(studies)


def _walk(folder: Path, studies: list[Study], dicom_files: list[Path]) -> None:
    """Collect exam folders (not descending into them) and every other file as a possible DICOM file."""
    if PreprocessedExam.is_complete(folder):
        exam = PreprocessedExam.load(folder)
        brats = {m: str(p) for m, p in exam.images("brats").items()}
        try:
            space, problem = exam.space.name, ""
        except BtkError as error:
            space, problem = None, error.problem
        studies.append(Study(_safe_name(folder.name), "preprocessed", folder, brats, problem=problem, space=space))
        return
    try:
        entries = sorted(folder.iterdir())
    except OSError as error:
        raise InputError(f"cannot list the folder ({error.strerror})", path=folder) from None
    images: dict[str, list[Path]] = {}
    for entry in entries:
        if entry.is_file() and is_nifti(entry):
            modality = nifti_modality(entry)
            if modality:
                images.setdefault(modality, []).append(entry)
    if images:
        studies.append(_nifti_study(folder, images))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            _walk(entry, studies, dicom_files)
        elif entry.is_file():
            dicom_files.append(entry)


def nifti_modality(path: Path) -> str | None:
    """The modality named by the last token of a NIfTI file name (``..._flair.nii.gz`` -> ``t2f``)."""
    return modality_of_stem(strip_nifti_suffix(path))


def _nifti_study(folder: Path, images: dict[str, list[Path]]) -> Study:
    problems = []
    doubles = [f"{SHORT_NAMES[m]}: {', '.join(p.name for p in paths)}" for m, paths in images.items() if len(paths) > 1]
    modalities = {m: str(images[m][0]) for m in MODALITIES if m in images}
    spaces = {atlas_space_of(Path(p)) for p in modalities.values()}
    space = spaces.pop() if len(spaces) == 1 and not doubles else None
    kind = "brats" if space is not None else "nifti"
    missing = tuple(m for m in MODALITIES if m not in images)
    if missing:
        problems.append(_missing_problem(images, missing, kind))
    if doubles:
        problems.append(f"more than one image per modality ({'; '.join(doubles)})")
    return Study(
        _safe_name(folder.name), kind, folder, modalities, problem="; ".join(problems), missing=missing, space=space
    )


def _missing_problem(present: Iterable[str], missing: Sequence[str], kind: str) -> str:
    """What a study lacking modalities is told; one on an atlas grid lacking one hears of synthesis."""
    found = ", ".join(sorted(SHORT_NAMES[m] for m in present))
    text = f"missing modality: no {short_names(list(missing))} image (found {found})"
    if len(missing) == 1 and kind == "brats":
        text += "; to synthesise it, pass --synthesise-missing ALGORITHM (btk algorithms list --track missing-mri)"
    return text


def with_synthesis(study: Study) -> Study:
    """The study as it is processed when a missing modality is synthesised (``btk run --synthesise-missing``).

    A study on an atlas space's grid that lacks exactly one modality (and has no other problem) becomes processable;
    one in native space keeps its problem, with the reason: the synthesis images work on an atlas grid, and
    the preprocessing needs all four modalities.
    """
    if len(study.missing) != 1 or study.problem != _missing_problem(study.modalities, study.missing, study.kind):
        return study
    if study.kind == "brats":
        return replace(study, problem="")
    return replace(
        study,
        problem=f"missing modality: no {short_names(list(study.missing))} image; it can be synthesised only for "
        "exams on an atlas grid (btk preprocess needs all four modalities)",
    )


def needing_only(study: Study, modalities: Sequence[str]) -> Study:
    """The study as a run that reads only ``modalities`` sees it (``native-t1c``: the T1c alone): lacking the
    others is then no problem, and nothing is synthesised for them."""
    if not study.missing or any(m in study.missing for m in modalities):
        return study
    only_missing = study.problem == _missing_problem(study.modalities, study.missing, study.kind) or (
        study.kind == "dicom" and study.problem.startswith("missing modality:")
    )
    return replace(study, problem="", missing=()) if only_missing else study


def atlas_space_of(path: Path) -> str | None:
    """The atlas space whose grid an image's header puts it on (:func:`btk.spaces.space_of_grid`), if any."""
    try:
        image = open_nifti(path)
    except Exception:  # unreadable headers are reported when the study is processed
        return None
    space = space_of_grid(image.shape, image.affine)
    return None if space is None else space.name


def _common_folder(files: list[Path]) -> Path:
    parents = [f.parent for f in files]
    return max(set(parents), key=parents.count)


def _series_listing(study) -> str:
    descriptions = [repr(s.description) + (f" ({s.problem})" if s.problem else "") for s in study.series.values()]
    return "the series " + ", ".join(descriptions) if descriptions else "no series"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "study"


def _unique_names(studies: list[Study]) -> list[Study]:
    seen: dict[str, int] = {}
    unique = []
    for study in studies:
        count = seen.get(study.name, 0)
        seen[study.name] = count + 1
        if count:
            study = replace(study, name=f"{study.name}-{count + 1}")
        unique.append(study)
    return unique
