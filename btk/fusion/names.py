"""The names of the fusion methods and flavours, and how a user's spelling of them is read.

Light on purpose (no numpy): the command line shows these names in its help, and the pipeline checks its
options with them, before anything heavy is imported. The methods themselves are in :mod:`btk.fusion.methods`.
"""

from __future__ import annotations

from btk.errors import InputError

#: Majority voting.
MAV = "mav"
#: SIMPLE, the selective and iterative method for performance level estimation.
SIMPLE = "simple"
#: STAPLE, simultaneous truth and performance level estimation.
STAPLE = "staple"
#: Every fusion method, in the order the help lists them.
METHODS = (MAV, SIMPLE, STAPLE)

#: The methods done right (btk's own rules).
DEFAULT = "default"
#: BraTS Toolkit's Fusionator (PyPI ``brats-toolkit`` 1.0.18), reproduced voxel for voxel.
BRATS_TOOLKIT = "brats-toolkit"
#: Every flavour, by its name.
FLAVOURS = (DEFAULT, BRATS_TOOLKIT)
#: Other accepted spellings of a flavour: ``btk`` was the name of the BraTS Toolkit flavour in btk 0.1.
FLAVOUR_ALIASES = {"btk": BRATS_TOOLKIT, "bratstoolkit": BRATS_TOOLKIT}

#: Default ``alpha`` of the ensemble alarms' threshold ``median - alpha * MAD`` (:mod:`btk.fusion.agreement`).
DEFAULT_ALPHA = 3.0


def method_name(name: str) -> str:
    """The fusion method ``name`` names, in lower case.

    Args:
        name: A method name in any case (``"SIMPLE"``, ``"mav"``).

    Returns:
        One of :data:`METHODS`.

    Raises:
        BtkError: For a name that is no fusion method; the message lists the choices.
    """
    method = name.lower()
    if method not in METHODS:
        raise InputError(f"unknown fusion method {name!r}", hint=f"use one of {', '.join(METHODS)}")
    return method


def flavour_name(name: str) -> str:
    """The flavour ``name`` names, with aliases resolved (``"btk"`` -> ``"brats-toolkit"``).

    Args:
        name: A flavour name or alias in any case.

    Returns:
        One of :data:`FLAVOURS`.

    Raises:
        BtkError: For a name that is no flavour; the message lists the choices.
    """
    flavour = FLAVOUR_ALIASES.get(name.lower(), name.lower())
    if flavour not in FLAVOURS:
        raise InputError(
            f"unknown flavour {name!r}",
            hint=f"use one of {', '.join(FLAVOURS)} ('btk' is accepted for {BRATS_TOOLKIT})",
        )
    return flavour
