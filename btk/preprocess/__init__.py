"""Preprocessing: raw DICOM or NIfTI exams to BraTS-ready, skull-stripped images (dcm2niix, ANTs, HD-BET).

>>> from btk.preprocess import Preprocessor
>>> exam = Preprocessor(fast=True).run("exams/patient-01", "out/patient-01")
>>> exam.outputs["brats/t1c"], exam.outputs["brats/mask"]

Names are imported on first use: reading a finished exam (:class:`PreprocessedExam`) needs none of the
``preprocess`` extra's libraries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from btk.preprocess.dicom import ConversionResult, convert_dicom
    from btk.preprocess.dicom_seg import write_dicom_seg
    from btk.preprocess.exam import PreprocessedExam, output_layout
    from btk.preprocess.native import to_native
    from btk.preprocess.preprocessor import Preprocessor

_LAZY = {
    "ConversionResult": "btk.preprocess.dicom",
    "convert_dicom": "btk.preprocess.dicom",
    "PreprocessedExam": "btk.preprocess.exam",
    "output_layout": "btk.preprocess.exam",
    "to_native": "btk.preprocess.native",
    "Preprocessor": "btk.preprocess.preprocessor",
    "write_dicom_seg": "btk.preprocess.dicom_seg",
}

__all__ = [
    "ConversionResult",
    "PreprocessedExam",
    "Preprocessor",
    "convert_dicom",
    "output_layout",
    "to_native",
    "write_dicom_seg",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'btk.preprocess' has no attribute {name!r}")
