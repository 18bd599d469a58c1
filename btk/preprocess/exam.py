"""The output folder of one preprocessed exam: stable file names per role, and loading a finished exam."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from btk.errors import BtkError, InputError
from btk.modalities import FILE_SUFFIXES, SEPARATORS, file_stem
from btk.spaces import DEFAULT_SPACE, MODES, SPACES, AtlasSpace, Space, get_space

#: The exam's record, written last: what was done, and every output by role (read only by this module).
PROVENANCE = "provenance.json"
#: The BraTS file namings an exam's outputs can follow.
NAMINGS = tuple(FILE_SUFFIXES)
#: Transform roles: what each ``.mat`` file maps (moving -> fixed).
TRANSFORM_ROLES = {"t1c": "transform/t1c_to_t1", "t2w": "transform/t2w_to_t1", "t2f": "transform/t2f_to_t1"}
ATLAS_TRANSFORM_ROLE = "transform/t1_to_atlas"


def output_layout(
    case_id: str, naming: str = "2023", mode: str = "skullstrip", space: Space = SPACES[DEFAULT_SPACE]
) -> dict[str, str]:
    """Role -> path relative to the exam folder, for every output of an exam.

    In ``deface`` mode the ``brats/`` and ``native/`` images are defaced instead of skull-stripped and there
    are no ``brats_skull/`` images (they would still show the face).

    In a native space (:class:`btk.spaces.NativeSpace`) the ``brats/`` images (its modalities only) and
    ``brats/mask`` lie on the reference image's own grid: there are no ``native/`` images, native masks or
    transforms, since nothing was moved.
    """
    if naming not in NAMINGS:
        raise InputError(f"unknown naming {naming!r}", hint=f"use one of {', '.join(NAMINGS)}")
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
    registered = isinstance(space, AtlasSpace)
    separator = SEPARATORS[naming]
    layout: dict[str, str] = {}
    for modality in space.modalities:
        name = file_stem(case_id, modality, naming)
        layout[f"brats/{modality}"] = f"brats/{name}.nii.gz"
        if mode == "skullstrip":
            layout[f"brats_skull/{modality}"] = f"brats_skull/{name}.nii.gz"
        if registered:
            layout[f"native/{modality}"] = f"native/{name}.nii.gz"
            layout[f"native_mask/{modality}"] = f"masks/{name}{separator}brain-native.nii.gz"
        layout[f"qc/{modality}"] = f"qc/{name}.png"
    layout["brats/mask"] = f"masks/{case_id}{separator}brain-brats.nii.gz"
    if registered:
        for modality, role in TRANSFORM_ROLES.items():
            layout[role] = f"transforms/{case_id}{separator}{modality}_to_t1.mat"
        layout[ATLAS_TRANSFORM_ROLE] = f"transforms/{case_id}{separator}t1_to_atlas.mat"
    return layout


@dataclass
class PreprocessedExam:
    """A finished exam folder.

    Attributes:
        folder: The exam output folder.
        provenance: The content of its ``provenance.json`` (``outputs`` holds paths relative to ``folder``).
    """

    folder: Path
    provenance: dict = field(repr=False)

    @property
    def outputs(self) -> dict[str, Path]:
        """Role (``brats/t1n``, ``native_mask/t2f``, ``transform/t1_to_atlas``, ...) -> absolute path."""
        return {role: self.folder / relative for role, relative in self.provenance["outputs"].items()}

    @property
    def case_id(self) -> str:
        """The case identifier used in the file names."""
        return str(self.provenance["case_id"])

    @property
    def space(self) -> Space:
        """The space the exam's ``brats/`` images lie in (exams preprocessed before btk knew spaces: the BraTS
        SRI24 space, the only one there was).

        Raises:
            InputError: the provenance names a space this btk does not know.
        """
        atlas = self.provenance.get("atlas")
        name = atlas.get("name", DEFAULT_SPACE) if isinstance(atlas, dict) else DEFAULT_SPACE
        try:
            return get_space(str(name))
        except InputError as error:
            raise error.replace(
                path=self.folder / PROVENANCE, hint="update btk, or re-run `btk preprocess --force`"
            ) from None

    def images(self, space: str = "brats") -> dict[str, Path]:
        """Modality (``t1n``, ``t1c``, ``t2w``, ``t2f``) -> absolute path of its image in one space, for each
        modality the exam's :attr:`space` holds (all four; the T1c alone in ``native-t1c``).

        Args:
            space: ``brats`` (on the grid of the exam's space, :attr:`space`), ``brats_skull`` (with the
                skull) or ``native``.

        Raises:
            InputError: the provenance lists no such image for some modality (the preprocessing did not finish).
        """
        outputs = self.outputs
        modalities = self.space.modalities
        missing = [f"{space}/{modality}" for modality in modalities if f"{space}/{modality}" not in outputs]
        if missing:
            raise InputError(
                f"the provenance lists no {', '.join(missing)} image: the preprocessing did not finish",
                path=self.folder / PROVENANCE,
                hint="re-run `btk preprocess` on this exam",
            )
        return {modality: outputs[f"{space}/{modality}"] for modality in modalities}

    @staticmethod
    def has_provenance(folder: str | Path) -> bool:
        """Whether ``btk preprocess`` wrote (or began to write) into ``folder``: it holds a provenance file."""
        return (Path(folder) / PROVENANCE).is_file()

    @staticmethod
    def is_complete(folder: str | Path) -> bool:
        """Whether ``folder`` is a finished exam (its provenance, written last and atomically, is there)."""
        try:
            PreprocessedExam.load(folder)
        except BtkError:
            return False
        return True

    @classmethod
    def read(cls, folder: str | Path) -> PreprocessedExam:
        """Open an exam folder by its provenance, without checking that every output is there.

        Raises:
            InputError: the folder has no provenance, or it cannot be read.
        """
        folder = Path(folder)
        provenance_path = folder / PROVENANCE
        if not provenance_path.is_file():
            raise InputError(
                f"not a finished preprocessed exam (no {PROVENANCE})",
                path=folder,
                hint="run btk preprocess on the exam first",
            )
        try:
            provenance = json.loads(provenance_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise InputError(
                f"cannot read the exam's provenance ({error})",
                path=provenance_path,
                hint="re-run `btk preprocess --force` on this exam",
            ) from None
        outputs = provenance.get("outputs") if isinstance(provenance, dict) else None
        if not isinstance(outputs, dict) or not all(isinstance(p, str) for p in outputs.values()):
            raise InputError(
                "the provenance has no 'outputs' map of roles to files",
                path=provenance_path,
                hint="re-run `btk preprocess --force` on this exam",
            )
        return cls(folder=folder, provenance=provenance)

    @classmethod
    def load(cls, folder: str | Path) -> PreprocessedExam:
        """Open a finished exam folder.

        Raises:
            InputError: the folder is not a finished exam (no or unreadable provenance, or missing outputs).
        """
        exam = cls.read(folder)
        outputs: dict[str, str] = exam.provenance["outputs"]
        missing = [relative for relative in outputs.values() if not (exam.folder / relative).is_file()]
        if missing:
            raise InputError(
                f"the exam folder is incomplete: {len(missing)} outputs are missing (e.g. {missing[0]})",
                path=exam.folder,
                hint="run btk preprocess again with --force",
            )
        return exam
