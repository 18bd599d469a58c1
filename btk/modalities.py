"""The four MRI modalities of a BraTS exam and every name btk knows them by.

| key   | shown | short | BraTS 2023 file | BraTS 2020 file  | aliases (file-name endings, option keys) |
|-------|-------|-------|-----------------|------------------|------------------------------------------|
| t1n   | T1    | t1    | `<case>-t1n`    | `<case>_t1`      | t1, t1n, t1w, t1native                   |
| t1c   | T1c   | t1c   | `<case>-t1c`    | `<case>_t1ce`    | t1c, t1ce, t1gd, t1post, t1wce           |
| t2w   | T2    | t2    | `<case>-t2w`    | `<case>_t2`      | t2, t2w                                  |
| t2f   | FLAIR | flair | `<case>-t2f`    | `<case>_flair`   | flair, fla, t2f                          |

The *key* (the BraTS 2023 suffix) is what btk's code uses. The *short name* is the one users see: the
options ``--t1/--t1c/--t2/--flair``, the fields of :class:`btk.segment.Exam`, the ``modalities`` column of
``manifest.csv``. :func:`canonical` turns any alias into the key.

The atlas spaces (and their grids) exams are registered to are in :mod:`btk.spaces`. Importing this module
imports nothing heavy.
"""

from __future__ import annotations

import re

from btk.errors import InputError

#: The four modalities, in BraTS order (the order of a network's input channels).
MODALITIES: tuple[str, ...] = ("t1n", "t1c", "t2w", "t2f")
#: Human names, for messages and figures.
DISPLAY_NAMES: dict[str, str] = {"t1n": "T1", "t1c": "T1c", "t2w": "T2", "t2f": "FLAIR"}
#: The names users see: command-line options, :class:`btk.segment.Exam` fields, ``manifest.csv``.
SHORT_NAMES: dict[str, str] = {"t1n": "t1", "t1c": "t1c", "t2w": "t2", "t2f": "flair"}
#: File-name suffix of each modality per BraTS naming (``<case><separator><suffix>.nii.gz``).
FILE_SUFFIXES: dict[str, dict[str, str]] = {
    "2023": {"t1n": "t1n", "t1c": "t1c", "t2w": "t2w", "t2f": "t2f"},
    "2020": {"t1n": "t1", "t1c": "t1ce", "t2w": "t2", "t2f": "flair"},
}
#: Separator between the case name and the suffix, per BraTS naming.
SEPARATORS: dict[str, str] = {"2023": "-", "2020": "_"}
#: Every name of a modality (lower case) -> its key.
ALIASES: dict[str, str] = {
    alias: key
    for key, aliases in {
        "t1n": ("t1", "t1n", "t1w", "t1native"),
        "t1c": ("t1c", "t1ce", "t1gd", "t1post", "t1wce"),
        "t2w": ("t2", "t2w"),
        "t2f": ("flair", "fla", "t2f"),
    }.items()
    for alias in aliases
}
_UNKNOWN_HINT = "use t1, t1c, t2 or flair"


def canonical(name: str) -> str:
    """The key of a modality named by any alias: ``"flair"``, ``"FLA"``, ``"t2f"`` -> ``"t2f"``.

    Args:
        name: A key, short name or alias, in any case.

    Returns:
        One of :data:`MODALITIES`.

    Raises:
        InputError: ``name`` names no modality.
    """
    key = ALIASES.get(name.strip().lower())
    if key is None:
        raise InputError(f"unknown modality {name!r}", hint=_UNKNOWN_HINT)
    return key


def modality_of_stem(stem: str) -> str | None:
    """The modality a file name's stem ends in, if any: ``"BraTS-001-t2f"``, ``"pat_FLAIR"`` -> ``"t2f"``.

    Args:
        stem: The file name without ``.nii``/``.nii.gz``; its last word (after ``_``, ``-``, ``.`` or a space)
            must be an alias.

    Returns:
        The key, or None.
    """
    return ALIASES.get(re.split(r"[_\-.\s]", stem.lower())[-1])


def file_stem(case: str, modality: str, naming: str = "2023") -> str:
    """The BraTS file name of a case's modality, without ``.nii.gz``.

    Args:
        case: The case name, e.g. ``BraTS-GLI-00000-000``.
        modality: A key of :data:`MODALITIES`.
        naming: ``"2023"`` (``<case>-t1n``) or ``"2020"`` (``<case>_t1``).

    Returns:
        E.g. ``BraTS-GLI-00000-000-t1n`` or ``BraTS-GLI-00000-000_t1``.
    """
    return f"{case}{SEPARATORS[naming]}{FILE_SUFFIXES[naming][modality]}"


def short_names(keys: list[str] | tuple[str, ...]) -> str:
    """``["t1n", "t2f"]`` -> ``"t1, flair"``: modalities as users name them, for messages."""
    return ", ".join(SHORT_NAMES[key] for key in keys)
