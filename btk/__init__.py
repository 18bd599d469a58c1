"""btk: brain-tumour MRI from raw DICOM studies to a consensus tumour segmentation.

The components can be used alone or chained:

>>> from btk import Fusionator
>>> result = Fusionator().fuse(["a.nii.gz", "b.nii.gz", "c.nii.gz"], method="simple")
>>> result.save("fused.nii.gz")

Names are imported on first use, so ``import btk`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_LAZY = {
    "BtkError": "btk.errors",
    "InputError": "btk.errors",
    "MissingFileError": "btk.errors",
    "OutputError": "btk.errors",
    "OutputExistsError": "btk.errors",
    "EngineError": "btk.errors",
    "ContainerError": "btk.errors",
    "MissingExtraError": "btk.errors",
    "Fusionator": "btk.fusion",
    "FusionResult": "btk.fusion",
    "LabelConvention": "btk.labels",
    "BRATS_2021": "btk.labels",
    "BRATS_2023": "btk.labels",
    "BRATS_2024_POST": "btk.labels",
    "get_convention": "btk.labels",
    "evaluate_case": "btk.evaluation",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'btk' has no attribute {name!r}")
