"""The input of a segmentation: the four co-registered BraTS-space modalities of one exam."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from btk.errors import BtkError
from btk.io import is_nifti, strip_nifti_suffix

#: The four modalities, in BraTS order, with the file-name endings that name them.
MODALITIES: dict[str, tuple[str, ...]] = {
    "t1": ("t1", "t1n", "t1w", "t1native"),
    "t1c": ("t1c", "t1ce", "t1gd", "t1post", "t1wce"),
    "t2": ("t2", "t2w"),
    "flair": ("flair", "fla", "t2f"),
}
_TOKEN_TO_MODALITY = {token: modality for modality, tokens in MODALITIES.items() for token in tokens}
#: The Preprocessor's record of an exam folder, and its roles of the BraTS-space skull-stripped images.
PROVENANCE = "provenance.json"
PROVENANCE_ROLES = {"t1": "brats/t1n", "t1c": "brats/t1c", "t2": "brats/t2w", "flair": "brats/t2f"}


@dataclass(frozen=True)
class Exam:
    """Paths of the four modalities; all share one voxel grid.

    Build one with :meth:`from_folder` (a ``btk preprocess`` output folder, or any folder whose NIfTI file
    names end in ``t1``/``t1n``, ``t1c``/``t1ce``, ``t2``/``t2w`` and ``flair``/``fla``/``t2f``) or
    :meth:`from_files`. ``name`` is the exam folder's name (default: the t1c file's folder).
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
    def from_files(
        cls, t1: str | Path, t1c: str | Path, t2: str | Path, flair: str | Path, name: str = ""
    ) -> Exam:
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
        folder = Path(folder)
        if not folder.is_dir():
            raise BtkError("exam folder not found" if not folder.exists() else "not a folder", path=folder,
                           hint="pass the output folder of `btk preprocess` or a folder with the four modalities")
        if (folder / PROVENANCE).is_file():
            return cls.from_files(**_files_from_provenance(folder), name=folder.resolve().name)
        return cls.from_files(**_files_by_name(folder), name=folder.resolve().name)

    def reference(self) -> nib.Nifti1Image:
        """Read all four headers, check they share one 3-D grid, and return the t1c image (the reference).

        Only headers are read here; voxel data stays on disk.
        """
        images = {}
        for modality, path in self.files().items():
            if not path.is_file():
                raise BtkError(f"{modality} image not found", path=path)
            if not is_nifti(path):
                raise BtkError(f"the {modality} image is not a NIfTI file (.nii or .nii.gz)", path=path)
            try:
                images[modality] = nib.load(str(path))
            except Exception as error:  # nibabel raises several types for unreadable headers
                raise BtkError(f"cannot read the {modality} image ({error})", path=path) from None
        reference = images["t1c"]
        shape = reference.shape[:3]
        for modality, image in images.items():
            if image.shape[:3] != shape or (len(image.shape) > 3 and image.shape[3] != 1):
                raise BtkError(
                    f"the {modality} image has shape {image.shape}, the t1c image {reference.shape}: "
                    "the modalities are not on one grid",
                    path=self.files()[modality],
                    hint="segment a preprocessed exam (btk preprocess), whose modalities are co-registered",
                )
            if not np.allclose(image.affine, reference.affine, atol=1e-3):
                raise BtkError(
                    f"the {modality} image's orientation or spacing differs from the t1c image's",
                    path=self.files()[modality],
                    hint="segment a preprocessed exam (btk preprocess), whose modalities are co-registered",
                )
        return reference


def _files_from_provenance(folder: Path) -> dict[str, Path]:
    """Modality -> file, from the ``outputs`` map of a preprocessed exam's provenance.json."""
    path = folder / PROVENANCE
    try:
        outputs = json.loads(path.read_text(encoding="utf-8")).get("outputs")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as error:
        raise BtkError(f"cannot read the exam's provenance ({error})", path=path,
                       hint="re-run `btk preprocess --force` on this exam") from None
    if not isinstance(outputs, dict):
        raise BtkError("the provenance has no 'outputs' map", path=path, hint="re-run `btk preprocess --force`")
    missing = [role for role in PROVENANCE_ROLES.values() if not isinstance(outputs.get(role), str)]
    if missing:
        raise BtkError(
            f"the provenance lists no {', '.join(missing)} image: the preprocessing did not finish",
            path=path, hint="re-run `btk preprocess` on this exam",
        )
    return {modality: folder / outputs[role] for modality, role in PROVENANCE_ROLES.items()}


def _files_by_name(folder: Path) -> dict[str, Path]:
    """Modality -> file, recognised by the ending of the NIfTI file names directly in ``folder``."""
    found: dict[str, list[Path]] = {m: [] for m in MODALITIES}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and is_nifti(p)):
        modality = _modality_of(path)
        if modality:
            found[modality].append(path)
    missing = [m for m, paths in found.items() if not paths]
    if missing:
        raise BtkError(
            f"no {', '.join(missing)} image found",
            path=folder,
            hint="name the files *_t1, *_t1ce, *_t2 and *_flair (.nii.gz), or BraTS style *-t1n, *-t1c, *-t2w, "
            "*-t2f; or pass the output folder of `btk preprocess`",
        )
    doubles = {m: paths for m, paths in found.items() if len(paths) > 1}
    if doubles:
        listing = "; ".join(f"{m}: {', '.join(p.name for p in paths)}" for m, paths in doubles.items())
        raise BtkError(f"more than one image per modality ({listing})", path=folder,
                       hint="keep one file per modality in the exam folder")
    return {m: paths[0] for m, paths in found.items()}


def _modality_of(path: Path) -> str | None:
    stem = strip_nifti_suffix(path).lower()
    token = re.split(r"[_\-.\s]", stem)[-1]
    return _TOKEN_TO_MODALITY.get(token)
