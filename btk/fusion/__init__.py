"""The Fusionator: a consensus of several candidate segmentations.

>>> from btk.fusion import Fusionator
>>> result = Fusionator().fuse(["a.nii.gz", "b.nii.gz", "c.nii.gz"], method="simple")
>>> result.save("fused.nii.gz")        # also writes fused.json and fused_agreement.json

Methods: ``mav`` (majority voting), ``simple`` (SIMPLE) and ``staple`` (STAPLE); label-wise, or region-wise
(``regions=True``: WT, TC and ET fused as binary masks and rebuilt into a label map that is nested by
construction). Each method is a class in :mod:`btk.fusion.methods`, found by :func:`~btk.fusion.methods.fusion_method`;
SIMPLE's parameters are a :class:`~btk.fusion.parameters.SimpleParameters`. Two flavours:

``default``
    The methods done right. Majority voting is a weighted plurality vote in which background votes like
    any label. SIMPLE drops poor candidates with a growing threshold and filters their weights with them;
    two empty masks have Dice 1. One tie rule for every method: a tie goes to background first, then to
    the outer class (ED before NCR before ET), so ties never grow the tumour.
``brats-toolkit`` (alias ``btk``)
    BraTS Toolkit's Fusionator (PyPI ``brats-toolkit`` 1.0.18) reproduced voxel for voxel, defects included;
    see :mod:`btk.fusion.compat` for every difference. It has no STAPLE.

Importing this package is light (no numpy): the names below that need numpy are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from btk.fusion.names import FLAVOURS, METHODS
from btk.fusion.parameters import SimpleParameters

if TYPE_CHECKING:
    from btk.fusion.fusionator import Fusionator, FusionResult
    from btk.fusion.methods import FusionMethod, fusion_method
    from btk.fusion.outputs import sidecar_paths

_LAZY = {
    "Fusionator": "btk.fusion.fusionator",
    "FusionResult": "btk.fusion.fusionator",
    "FusionMethod": "btk.fusion.methods",
    "fusion_method": "btk.fusion.methods",
    "sidecar_paths": "btk.fusion.outputs",
}

__all__ = [
    "FLAVOURS",
    "METHODS",
    "FusionMethod",
    "FusionResult",
    "Fusionator",
    "SimpleParameters",
    "fusion_method",
    "sidecar_paths",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'btk.fusion' has no attribute {name!r}")
