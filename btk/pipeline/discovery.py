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
    Four modalities already on the BraTS grid (240 x 240 x 155, 1 mm): preprocessing is skipped and no
    native-space segmentation can be made. With a synthesis algorithm (:func:`with_synthesis`), three of
    them: the fourth is synthesised before the segmentation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from btk.deid import pseudonym
from btk.errors import InputError, MissingFileError
from btk.io import is_nifti, open_nifti, strip_nifti_suffix
from btk.modalities import MODALITIES, SHORT_NAMES, brats_grid, modality_of_stem, short_names
from btk.pipeline.dicom import group_dicom_files
from btk.preprocess.exam import PreprocessedExam


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
    """

    name: str
    kind: str
    source: Path
    modalities: dict[str, str] = field(default_factory=dict)
    files: tuple[Path, ...] = ()
    problem: str = ""
    identifiers: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    missing: tuple[str, ...] = ()


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
        brats = PreprocessedExam.load(folder).images("brats")
        studies.append(Study(_safe_name(folder.name), "preprocessed", folder, {m: str(p) for m, p in brats.items()}))
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
    kind = "brats" if not doubles and all(on_brats_grid(Path(p)) for p in modalities.values()) else "nifti"
    missing = tuple(m for m in MODALITIES if m not in images)
    if missing:
        problems.append(_missing_problem(images, missing, kind))
    if doubles:
        problems.append(f"more than one image per modality ({'; '.join(doubles)})")
    return Study(_safe_name(folder.name), kind, folder, modalities, problem="; ".join(problems), missing=missing)


def _missing_problem(present: Iterable[str], missing: Sequence[str], kind: str) -> str:
    """What a study lacking modalities is told; one on the BraTS grid lacking one hears of synthesis."""
    found = ", ".join(sorted(SHORT_NAMES[m] for m in present))
    text = f"missing modality: no {short_names(list(missing))} image (found {found})"
    if len(missing) == 1 and kind == "brats":
        text += "; to synthesise it, pass --synthesise-missing ALGORITHM (btk algorithms list --track missing-mri)"
    return text


def with_synthesis(study: Study) -> Study:
    """The study as it is processed when a missing modality is synthesised (``btk run --synthesise-missing``).

    A study on the BraTS grid that lacks exactly one modality (and has no other problem) becomes processable;
    one in native space keeps its problem, with the reason: the synthesis images work on the BraTS grid, and
    the preprocessing needs all four modalities.
    """
    if len(study.missing) != 1 or study.problem != _missing_problem(study.modalities, study.missing, study.kind):
        return study
    if study.kind == "brats":
        return replace(study, problem="")
    return replace(
        study,
        problem=f"missing modality: no {short_names(list(study.missing))} image; it can be synthesised only for "
        "exams on the BraTS grid (btk preprocess needs all four modalities)",
    )


def on_brats_grid(path: Path) -> bool:
    """Whether an image's header puts it on the BraTS grid (shape 240 x 240 x 155, BraTS affine)."""
    try:
        image = open_nifti(path)
    except Exception:  # unreadable headers are reported when the study is processed
        return False
    return brats_grid().holds(image.shape, image.affine)


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
