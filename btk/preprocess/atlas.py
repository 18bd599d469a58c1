"""The BraTS atlas shipped with btk: the SRI-24-derived T1 template on the 240 x 240 x 155, 1 mm grid."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

ATLAS_SHAPE = (240, 240, 155)


def atlas_folder() -> Path:
    """Folder of the shipped atlas files (with their ``COPYRIGHT.md``)."""
    return Path(str(resources.files("btk") / "data" / "atlas"))


def atlas_t1() -> Path:
    """The T1 atlas image every exam is registered to (BraTS space)."""
    return atlas_folder() / "t1_brats_space.nii.gz"
