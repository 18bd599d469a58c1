"""The input of a segmentation: the four co-registered BraTS-space modalities of one exam (:class:`Exam`),
and an exam that lacks one, the input of a missing-sequence synthesis (:class:`PartialExam`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from btk.errors import InputError, MissingFileError
from btk.io import is_nifti, open_nifti, strip_nifti_suffix
from btk.modalities import MODALITIES, SHORT_NAMES, modality_of_stem, short_names
from btk.preprocess.exam import PreprocessedExam


@dataclass(frozen=True)
class Exam:
    """Paths of the four modalities; all share one voxel grid.

    Build one with :meth:`from_folder` (a ``btk preprocess`` output folder, or any folder whose NIfTI file
    names end in a modality alias of :mod:`btk.modalities`: ``t1``/``t1n``, ``t1c``/``t1ce``, ``t2``/``t2w``,
    ``flair``/``fla``/``t2f``, ...) or :meth:`from_files`. The fields are the modalities' short names.
    ``name`` is the exam folder's name (default: the t1c file's folder).
    """

    t1: Path
    t1c: Path
    t2: Path
    flair: Path
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.t1c.parent.name)

    def files(self) -> dict[str, Path]:
        """Modality -> path, in BraTS order."""
        return {"t1": self.t1, "t1c": self.t1c, "t2": self.t2, "flair": self.flair}

    @classmethod
    def from_files(cls, t1: str | Path, t1c: str | Path, t2: str | Path, flair: str | Path, name: str = "") -> Exam:
        """An exam from four explicit files, checked to exist and to share one grid."""
        exam = cls(Path(t1), Path(t1c), Path(t2), Path(flair), name)
        exam.reference()
        return exam

    @classmethod
    def from_folder(cls, folder: str | Path) -> Exam:
        """The four modalities of an exam folder.

        A ``btk preprocess`` output folder names them in its ``provenance.json`` (``outputs``: roles
        ``brats/t1n``, ``brats/t1c``, ``brats/t2w``, ``brats/t2f``); any other folder is searched for NIfTI
        files whose names end in a modality (BraTS 2023 ``-t1n/-t1c/-t2w/-t2f``, BraTS 2020
        ``_t1/_t1ce/_t2/_flair``, ...).
        """
        folder = _existing_folder(folder)
        if PreprocessedExam.has_provenance(folder):
            images = PreprocessedExam.read(folder).images("brats")
        else:
            images = _images_by_name(folder)
        return cls.from_files(images["t1n"], images["t1c"], images["t2w"], images["t2f"], name=folder.resolve().name)

    def reference(self) -> nib.Nifti1Image:
        """Read all four headers, check they share one 3-D grid, and return the t1c image (the reference).

        Only headers are read here; voxel data stays on disk.
        """
        return _one_grid(self.files(), "t1c")


@dataclass(frozen=True)
class PartialExam:
    """Co-registered BraTS-space modalities of an exam that lacks some: what a synthesis image reads.

    ``images`` maps short names (``t1``, ``t1c``, ``t2``, ``flair``) to files, in BraTS order.
    """

    images: dict[str, Path]
    name: str

    @property
    def missing(self) -> tuple[str, ...]:
        """The short names of the modalities it lacks, in BraTS order."""
        return tuple(SHORT_NAMES[m] for m in MODALITIES if SHORT_NAMES[m] not in self.images)

    def files(self) -> dict[str, Path]:
        """Modality (short name) -> path, in BraTS order."""
        return dict(self.images)

    def reference(self) -> nib.Nifti1Image:
        """Check the images share one grid and return the first of t1c, t1, t2, flair that is present."""
        first = next(m for m in ("t1c", "t1", "t2", "flair") if m in self.images)
        return _one_grid(self.images, first)

    @classmethod
    def from_folder(cls, folder: str | Path) -> PartialExam:
        """The modalities found by name in ``folder`` (as :meth:`Exam.from_folder` finds them, but any may
        be missing; none at all is an error)."""
        folder = _existing_folder(folder)
        found = _images_by_name(folder, allow_missing=True)
        if not found:
            raise InputError(
                "no modality image found",
                path=folder,
                hint="name the files *-t1n, *-t1c, *-t2w, *-t2f (.nii.gz), or *_t1, *_t1ce, *_t2, *_flair",
            )
        exam = cls({SHORT_NAMES[m]: path for m, path in found.items()}, folder.resolve().name)
        exam.reference()
        return exam


def exam_in(folder: str | Path) -> Exam | PartialExam:
    """The exam in ``folder``: an :class:`Exam` when it has the four modalities (or is a ``btk preprocess``
    output), otherwise a :class:`PartialExam` of those it has (enough for a T1c-only image, or a synthesis)."""
    folder = _existing_folder(folder)
    if PreprocessedExam.has_provenance(folder):
        return Exam.from_folder(folder)
    found = _images_by_name(folder, allow_missing=True)
    if len(found) == len(MODALITIES):
        return Exam.from_folder(folder)
    return PartialExam.from_folder(folder)


def _existing_folder(folder: str | Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise (MissingFileError if not folder.exists() else InputError)(
            "exam folder not found" if not folder.exists() else "not a folder",
            path=folder,
            hint="pass the output folder of `btk preprocess` or a folder with the modalities",
        )
    return folder


def _one_grid(files: dict[str, Path], reference_modality: str) -> nib.Nifti1Image:
    """Read the headers of ``files`` (short name -> path), check they share one 3-D grid, and return the
    image of ``reference_modality``; only headers are read."""
    images = {}
    for modality, path in files.items():
        if not path.is_file():
            raise MissingFileError(f"{modality} image not found", path=path)
        if not is_nifti(path):
            raise InputError(f"the {modality} image is not a NIfTI file (.nii or .nii.gz)", path=path)
        try:
            images[modality] = open_nifti(path)
        except Exception as error:  # nibabel raises several types for unreadable headers
            raise InputError(f"cannot read the {modality} image ({error})", path=path) from None
    reference = images[reference_modality]
    shape = reference.shape[:3]
    for modality, image in images.items():
        if image.shape[:3] != shape or (len(image.shape) > 3 and image.shape[3] != 1):
            raise InputError(
                f"the {modality} image has shape {image.shape}, the {reference_modality} image {reference.shape}: "
                "the modalities are not on one grid",
                path=files[modality],
                hint="segment a preprocessed exam (btk preprocess), whose modalities are co-registered",
            )
        if not np.allclose(image.affine, reference.affine, atol=1e-3):
            raise InputError(
                f"the {modality} image's orientation or spacing differs from the {reference_modality} image's",
                path=files[modality],
                hint="segment a preprocessed exam (btk preprocess), whose modalities are co-registered",
            )
    return reference


def _images_by_name(folder: Path, allow_missing: bool = False) -> dict[str, Path]:
    """Modality -> file, recognised by the ending of the NIfTI file names directly in ``folder`` (only the
    modalities found, with ``allow_missing``)."""
    found: dict[str, list[Path]] = {m: [] for m in MODALITIES}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and is_nifti(p)):
        modality = modality_of_stem(strip_nifti_suffix(path))
        if modality:
            found[modality].append(path)
    missing = [m for m, paths in found.items() if not paths]
    if missing and not allow_missing:
        raise InputError(
            f"no {short_names(missing)} image found",
            path=folder,
            hint="name the files *_t1, *_t1ce, *_t2 and *_flair (.nii.gz), or BraTS style *-t1n, *-t1c, *-t2w, "
            "*-t2f; or pass the output folder of `btk preprocess`",
        )
    doubles = {m: paths for m, paths in found.items() if len(paths) > 1}
    if doubles:
        listing = "; ".join(f"{SHORT_NAMES[m]}: {', '.join(p.name for p in paths)}" for m, paths in doubles.items())
        raise InputError(
            f"more than one image per modality ({listing})",
            path=folder,
            hint="keep one file per modality in the exam folder",
        )
    return {m: paths[0] for m, paths in found.items() if paths}
