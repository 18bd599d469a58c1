"""One patient's visits: which studies of a ``btk run --longitudinal`` input are the visits, and in what order.

The input is one patient's folder; discovery (:func:`btk.pipeline.discovery.discover`) finds its studies as for
any run, and each study it finds is a visit (time point). btk never guesses that a folder of studies is one
patient's: a batch of several patients' exams looks the same on disk, and comparing them would give a
meaningless response category. So the visits are compared only when asked (``--longitudinal``, or ``--visits``),
and the input must then say unambiguously what the visits are and in what order:

``dicom`` visits
    Ordered by the StudyDate and StudyTime of each study (read from the headers; used for ordering only, never
    written, like every other header date). Every study must carry the same PatientID (compared as salted
    hashes, never shown) and a StudyDate, and no two may share the date and time. Their names are the usual
    pseudonyms; ``--visits`` cannot name them.
NIfTI visits (``nifti``, ``brats`` and ``preprocessed`` exam folders)
    Ordered by ``--visits NAME,...`` (every visit's folder name, each once), else by their folder names when
    those differ only in their numbers (``visit-1``, ``visit-2``, ``visit-10``; ``2021-03-04``, ``2021-09-30``):
    the numbers are compared as numbers, left to right.

A DICOM file that cannot be read becomes a study of its own (``unreadable-<hash>``): it is processed (and
fails) as in any run, but is no visit. Every visit must lie on the BraTS SRI24 grid, where the comparison
works (:data:`btk.pipeline.followup.COMPARED_SPACE`). Anything else is a usage error before any study starts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from btk.errors import InputError
from btk.pipeline.discovery import Study
from btk.pipeline.followup import COMPARED_SPACE, COMPARISON_STAGE

#: The problem discovery gives a file that looks like DICOM but cannot be read (such a study is no visit).
_UNREADABLE = "bad DICOM:"
_NUMBER = re.compile(r"(\d+)")


def order_visits(studies: Sequence[Study], run_space: str, order: Sequence[str] | None = None) -> list[Study]:
    """The patient's studies in visit order, each with its ``visit`` number (1: the baseline), then the studies
    that are no visit (unreadable DICOM files), unnumbered.

    Args:
        studies: What discovery found in the patient's folder.
        run_space: The atlas space the run preprocesses raw studies to.
        order: The visits' names in order (``--visits``), for NIfTI visits; None: from their names.

    Raises:
        InputError: The input is not one patient's visits in an order btk can tell (see the module documentation).
    """
    visits = [study for study in studies if not study.problem.startswith(_UNREADABLE)]
    others = [study for study in studies if study.problem.startswith(_UNREADABLE)]
    if len(visits) < 2:
        raise InputError(
            f"--longitudinal needs a patient folder with two or more visits; found {len(visits)}",
            hint="give the folder holding the patient's exams (one sub-folder or DICOM study per visit)",
        )
    kinds = {study.kind == "dicom" for study in visits}
    if len(kinds) > 1:
        raise InputError(
            "the visits mix DICOM studies and NIfTI exam folders, so btk cannot tell their order "
            "(DICOM visits are ordered by their StudyDate, NIfTI ones by their names)",
            hint="give every visit in one form: all DICOM, or all NIfTI",
        )
    ordered = _by_date(visits, order) if kinds == {True} else _by_name(visits, order)
    _refuse_other_spaces(ordered, run_space)
    named = [study.name for study in ordered if study.name == COMPARISON_STAGE]
    if named:
        raise InputError(
            f"a visit is named {COMPARISON_STAGE!r}, the output folder of the comparison",
            hint="rename that visit's folder",
        )
    return [replace(study, visit=number) for number, study in enumerate(ordered, start=1)] + others


def _by_date(visits: Sequence[Study], order: Sequence[str] | None) -> list[Study]:
    """DICOM visits of one patient, by StudyDate and StudyTime."""
    if order:
        raise InputError(
            "--visits names NIfTI exam folders; DICOM visits are ordered by their StudyDate",
            hint="drop --visits",
        )
    without = [study.name for study in visits if not study.patient]
    if without:
        raise InputError(
            f"the DICOM studies {', '.join(without)} have no PatientID, so btk cannot tell that the visits are of "
            "one patient",
            hint="give the visits as NIfTI exam folders with --visits, or fix the headers",
        )
    patients = len({study.patient for study in visits})
    if patients > 1:
        raise InputError(
            f"the DICOM studies are of {patients} different patients (their PatientIDs differ)",
            hint="give one patient's folder; --longitudinal compares the visits of one patient",
        )
    undated = [study.name for study in visits if not study.acquired]
    if undated:
        raise InputError(
            f"the DICOM studies {', '.join(undated)} have no valid StudyDate, so the visits cannot be ordered",
            hint="give the visits as NIfTI exam folders with --visits, or fix the headers",
        )
    if len({study.acquired for study in visits}) < len(visits):
        raise InputError(
            "two or more DICOM studies have the same StudyDate and StudyTime, so the visits cannot be ordered",
            hint="give the visits as NIfTI exam folders with --visits",
        )
    return sorted(visits, key=lambda study: study.acquired)


def _by_name(visits: Sequence[Study], order: Sequence[str] | None) -> list[Study]:
    """NIfTI visits in the ``--visits`` order, else by the numbers in their names."""
    names = {study.name: study for study in visits}
    found = ", ".join(names)
    if order:
        unknown = [name for name in order if name not in names]
        doubled = sorted({name for name in order if list(order).count(name) > 1})
        left_out = [name for name in names if name not in order]
        if unknown or doubled or left_out:
            problems = [
                *([f"no visit named {', '.join(unknown)}"] if unknown else []),
                *([f"{', '.join(doubled)} named twice"] if doubled else []),
                *([f"{', '.join(left_out)} not named"] if left_out else []),
            ]
            raise InputError(
                f"--visits must name every visit once: {'; '.join(problems)}", hint=f"the visits found: {found}"
            )
        return [names[name] for name in order]
    templates = {_NUMBER.sub("#", name) for name in names}
    keys = {name: tuple(int(number) for number in _NUMBER.findall(name)) for name in names}
    if len(templates) > 1 or not all(keys.values()) or len(set(keys.values())) < len(keys):
        raise InputError(
            f"cannot tell the order of the visits from their names ({found}): they must differ only in their "
            "numbers (visit-1, visit-2; 2021-03-04, 2021-09-30)",
            hint="give the order with --visits NAME,NAME,... (baseline first)",
        )
    return sorted(visits, key=lambda study: keys[study.name])


def _refuse_other_spaces(visits: Sequence[Study], run_space: str) -> None:
    """Every visit must lie in (or be preprocessed to) the space the comparison works in."""
    spaces = {study.name: study.space or run_space for study in visits}
    other = {name: space for name, space in spaces.items() if space != COMPARED_SPACE}
    if other:
        listing = ", ".join(f"{name} ({space})" for name, space in other.items())
        raise InputError(
            f"the comparison of the visits works on the {COMPARED_SPACE} grid, but these visits are in another "
            f"space: {listing}",
            hint=f"give every visit in the {COMPARED_SPACE} space (raw exams are preprocessed to it with "
            f"--atlas {COMPARED_SPACE}, or by algorithms of that space)",
        )
