"""The output folder of one preprocessed exam: stable file names per role, and loading a finished exam."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from btk.errors import BtkError
from btk.preprocess.modalities import MODALITIES

PROVENANCE = "provenance.json"
NAMINGS = ("2023", "2020")
MODES = ("skullstrip", "deface")
#: BraTS 2020 file suffixes of the four modalities.
_SUFFIX_2020 = {"t1n": "t1", "t1c": "t1ce", "t2w": "t2", "t2f": "flair"}
#: Transform roles: what each ``.mat`` file maps (moving -> fixed).
TRANSFORM_ROLES = {"t1c": "transform/t1c_to_t1", "t2w": "transform/t2w_to_t1", "t2f": "transform/t2f_to_t1"}
ATLAS_TRANSFORM_ROLE = "transform/t1_to_atlas"


def image_name(case_id: str, modality: str, naming: str) -> str:
    """``BraTS-001-t1n`` (2023 naming) or ``BraTS-001_t1`` (2020 naming), without the ``.nii.gz``."""
    return f"{case_id}_{_SUFFIX_2020[modality]}" if naming == "2020" else f"{case_id}-{modality}"


def output_layout(case_id: str, naming: str = "2023", mode: str = "skullstrip") -> dict[str, str]:
    """Role -> path relative to the exam folder, for every output of an exam.

    In ``deface`` mode the ``brats/`` and ``native/`` images are defaced instead of skull-stripped and there
    are no ``brats_skull/`` images (they would still show the face).
    """
    if naming not in NAMINGS:
        raise BtkError(f"unknown naming {naming!r}", hint=f"use one of {', '.join(NAMINGS)}")
    if mode not in MODES:
        raise BtkError(f"unknown mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
    separator = "_" if naming == "2020" else "-"
    layout: dict[str, str] = {}
    for modality in MODALITIES:
        name = image_name(case_id, modality, naming)
        layout[f"brats/{modality}"] = f"brats/{name}.nii.gz"
        if mode == "skullstrip":
            layout[f"brats_skull/{modality}"] = f"brats_skull/{name}.nii.gz"
        layout[f"native/{modality}"] = f"native/{name}.nii.gz"
        layout[f"native_mask/{modality}"] = f"masks/{name}{separator}brain-native.nii.gz"
        layout[f"qc/{modality}"] = f"qc/{name}.png"
    layout["brats/mask"] = f"masks/{case_id}{separator}brain-brats.nii.gz"
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

    @staticmethod
    def is_complete(folder: str | Path) -> bool:
        """Whether ``folder`` is a finished exam (its provenance, written last and atomically, is there)."""
        try:
            PreprocessedExam.load(folder)
        except BtkError:
            return False
        return True

    @classmethod
    def load(cls, folder: str | Path) -> PreprocessedExam:
        """Open a finished exam folder.

        Raises:
            BtkError: the folder is not a finished exam (no or unreadable provenance, or missing outputs).
        """
        folder = Path(folder)
        provenance_path = folder / PROVENANCE
        if not provenance_path.is_file():
            raise BtkError(
                f"not a finished preprocessed exam (no {PROVENANCE})",
                path=folder,
                hint="run btk preprocess on the exam first",
            )
        try:
            provenance = json.loads(provenance_path.read_text(encoding="utf-8"))
            outputs = provenance["outputs"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise BtkError(f"the provenance file cannot be read ({error})", path=provenance_path) from None
        missing = [relative for relative in outputs.values() if not (folder / relative).is_file()]
        if missing:
            raise BtkError(
                f"the exam folder is incomplete: {len(missing)} outputs are missing (e.g. {missing[0]})",
                path=folder,
                hint="run btk preprocess again with --force",
            )
        return cls(folder=folder, provenance=provenance)
