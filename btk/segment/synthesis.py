"""Missing-sequence synthesis: what a BraSyn image's run produces, a complete exam with one modality flagged
synthetic.

The Segmentor runs the image (:meth:`btk.segment.Segmentor.synthesise`) on the three modalities an exam has;
this module names and records the result. The output folder holds the three real modalities, the synthetic
one as ``<exam>-synthetic-<suffix>.nii.gz`` (``-t2f`` for FLAIR: recognised by :meth:`Exam.from_folder`, and
flagged by its name) and ``synthesis.json``, which says which modality is synthetic and by what.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from btk import __version__
from btk.io import FOLDER_MARKERS, sha256
from btk.modalities import DISPLAY_NAMES, FILE_SUFFIXES, canonical
from btk.segment.contracts import place
from btk.segment.exam import PartialExam

#: The record of a synthesis in its output folder (also the marker that btk wrote the folder).
SYNTHESIS_RECORD = "synthesis.json"
#: The key that identifies :data:`SYNTHESIS_RECORD` as btk's.
SYNTHESIS_KEY = FOLDER_MARKERS[SYNTHESIS_RECORD]


def synthetic_file_name(exam_name: str, modality: str) -> str:
    """``<exam>-synthetic-<suffix>.nii.gz`` for a modality's short name (``flair`` -> ``...-t2f.nii.gz``)."""
    return f"{exam_name}-synthetic-{FILE_SUFFIXES['2023'][canonical(modality)]}.nii.gz"


def copy_real_modalities(exam: PartialExam, folder: Path) -> dict[str, Path]:
    """Copy the exam's images into ``folder`` as ``<exam>-<suffix>.nii.gz``; short name -> copy."""
    copies = {}
    for modality, path in exam.files().items():
        copies[modality] = folder / f"{exam.name}-{FILE_SUFFIXES['2023'][canonical(modality)]}.nii.gz"
        place(path, copies[modality])
    return copies


@dataclass(frozen=True)
class SynthesisReport:
    """A finished synthesis: the complete exam folder, which modality is synthetic, and by what.

    Attributes:
        folder: The output exam folder (the three real modalities and the synthetic one).
        modality: The synthesised modality (short name: ``t1``, ``t1c``, ``t2``, ``flair``).
        image: The synthetic image's file.
        algorithm: The registry entry that made it.
        reference: The entry's image (``repository:tag``).
        seconds: How long the run took.
        inputs: The real modalities it was made from (short name -> the file read).
    """

    folder: Path
    modality: str
    image: Path
    algorithm: str
    reference: str
    seconds: float
    inputs: dict[str, Path]

    @property
    def label(self) -> str:
        """How the synthetic image is shown: ``"synthetic FLAIR"``."""
        return f"synthetic {DISPLAY_NAMES[canonical(self.modality)]}"

    def to_dict(self) -> dict:
        """The content of :data:`SYNTHESIS_RECORD`."""
        return {
            SYNTHESIS_KEY: 1,
            "btk_version": __version__,
            "synthetic": {"modality": self.modality, "file": self.image.name, "sha256": sha256(self.image)},
            "algorithm": self.algorithm,
            "image": self.reference,
            "seconds": round(self.seconds, 3),
            "inputs": {m: {"file": p.name, "sha256": sha256(p)} for m, p in self.inputs.items()},
        }
