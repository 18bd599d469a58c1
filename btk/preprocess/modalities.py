"""Recognising the four BraTS modalities from file names, series descriptions and sequence parameters.

Rules, in order:

1. Text (DICOM series description and protocol name, or the file name), split into words:
   FLAIR (``flair``, ``fla``, ``t2f``, ``tirm``, ``darkfluid``) before T1c (a T1 word together with a contrast
   word such as ``post``, ``gad``, ``gd``, ``ce``, ``contrast``, or ``t1c``/``t1ce``/``t1gd``), then T2
   (``t2``, ``t2w``), then T1 (``t1``, ``t1w``, ``t1n``, ``mprage``, ``spgr``). A T1 series with a contrast
   agent recorded in the DICOM (ContrastBolusAgent) is T1c.
2. Otherwise the sequence parameters from the dcm2niix sidecar: inversion time >= 1.2 s and echo time
   >= 60 ms -> FLAIR; echo time >= 60 ms and repetition time >= 1.5 s -> T2; echo time <= 30 ms and
   repetition time <= 1.2 s -> T1 (T1c with a contrast agent).
3. Ambiguity (several series for one modality): the one with the smallest voxel volume wins (finest
   resolution), then the one acquired last (highest series number, e.g. the latest post-contrast T1).
   Every such choice is logged and recorded in the provenance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from btk.console import logger
from btk.modalities import DISPLAY_NAMES, MODALITIES

_FLAIR_WORDS = {"flair", "fla", "t2f", "tirm", "darkfluid", "dark"}
_CONTRAST_WORDS = {"post", "gad", "gd", "ce", "contrast", "postcontrast", "c", "km", "gado", "gadolinium"}
_T1C_WORDS = {"t1c", "t1ce", "t1gd", "t1post", "t1km", "t1cgd"}
_T2_WORDS = {"t2", "t2w", "t2weighted", "tse2d1", "t2tse"}
_T1_WORDS = {"t1", "t1w", "t1n", "mprage", "spgr", "t1weighted", "t1native", "bravo", "tfl3d1"}


@dataclass
class Candidate:
    """One image that may be one of the modalities.

    Attributes:
        path: The NIfTI file.
        text: Series description / protocol name / file name the decision was based on.
        modality: The recognised modality, or None.
        reason: Why (for reports).
        series_number: DICOM series number (None for NIfTI inputs).
        voxel_volume: mm^3 per voxel (for the ambiguity rule).
    """

    path: Path
    text: str
    modality: str | None = None
    reason: str = ""
    series_number: int | None = None
    voxel_volume: float = 0.0
    parameters: dict = field(default_factory=dict)


def words(text: str) -> set[str]:
    """Lower-case words of a name: ``'MRHR_T1_AX_POST_GAD'`` -> ``{'mrhr', 't1', 'ax', 'post', 'gad'}``."""
    return {word for word in re.split(r"[^a-z0-9]+", text.lower()) if word}


def modality_from_text(text: str, contrast_agent: bool = False) -> str | None:
    """The modality a series description or file name names, if any."""
    found = words(text)
    compact = re.sub(r"[^a-z0-9+]", "", text.lower())
    if found & _FLAIR_WORDS or "flair" in compact:
        return "t2f"
    is_t1 = bool(found & _T1_WORDS) or any(word.startswith("t1") and not word.startswith("t1c") for word in found)
    if found & _T1C_WORDS or "t1+c" in compact or (is_t1 and (found & _CONTRAST_WORDS or contrast_agent)):
        return "t1c"
    if found & _T2_WORDS or any(re.fullmatch(r"t2[a-z]*", word) for word in found):
        return "t2w"
    if is_t1:
        return "t1n"
    if found & {"post", "gad", "gd"}:  # "AX POST GAD" without a T1 word: post-contrast images are T1-weighted
        return "t1c"
    return None


def modality_from_parameters(parameters: dict, contrast_agent: bool = False) -> str | None:
    """The modality implied by echo, repetition and inversion times (seconds, as in dcm2niix sidecars)."""
    echo = parameters.get("EchoTime")
    repetition = parameters.get("RepetitionTime")
    inversion = parameters.get("InversionTime")
    if echo is None or repetition is None:
        return None
    if inversion is not None and inversion >= 1.2 and echo >= 0.06:
        return "t2f"
    if echo >= 0.06 and repetition >= 1.5:
        return "t2w"
    if echo <= 0.03 and repetition <= 1.2:
        return "t1c" if contrast_agent else "t1n"
    return None


def recognise(candidate: Candidate, contrast_agent: bool = False) -> Candidate:
    """Fill ``candidate.modality`` and ``candidate.reason`` by the rules of this module."""
    modality = modality_from_text(candidate.text, contrast_agent)
    if modality is not None:
        candidate.modality, candidate.reason = modality, f"name {candidate.text!r}"
        return candidate
    modality = modality_from_parameters(candidate.parameters, contrast_agent)
    if modality is not None:
        shown = {
            k: candidate.parameters[k]
            for k in ("EchoTime", "RepetitionTime", "InversionTime")
            if k in candidate.parameters
        }
        candidate.modality, candidate.reason = modality, f"sequence parameters {shown}"
    return candidate


def choose(candidates: list[Candidate]) -> tuple[dict[str, Candidate], list[str]]:
    """One candidate per modality by the ambiguity rule; returns the choice and a note per ambiguity."""
    chosen: dict[str, Candidate] = {}
    notes: list[str] = []
    for modality in MODALITIES:
        options = [c for c in candidates if c.modality == modality]
        if not options:
            continue
        options.sort(key=lambda c: (c.voxel_volume, -(c.series_number or 0), str(c.path)))
        chosen[modality] = options[0]
        if len(options) > 1:
            note = (
                f"{len(options)} candidate {DISPLAY_NAMES[modality]} images "
                f"({', '.join(_describe(c) for c in options)}); chose {_describe(options[0])} "
                "(finest resolution, then latest series)"
            )
            logger.warning(note)
            notes.append(note)
    return chosen, notes


def _describe(candidate: Candidate) -> str:
    number = f"series {candidate.series_number} " if candidate.series_number is not None else ""
    return f"{number}{candidate.text!r}"
