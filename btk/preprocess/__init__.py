"""Preprocessing: raw DICOM or NIfTI exams to BraTS-ready, skull-stripped images (dcm2niix, ANTs, HD-BET).

>>> from btk.preprocess import Preprocessor
>>> exam = Preprocessor(fast=True).run("exams/patient-01", "out/patient-01")
>>> exam.outputs["brats/t1c"], exam.outputs["brats/mask"]
"""

from btk.preprocess.dicom import ConversionResult, convert_dicom
from btk.preprocess.exam import PreprocessedExam, output_layout
from btk.preprocess.native import to_native
from btk.preprocess.preprocessor import Preprocessor

__all__ = ["ConversionResult", "PreprocessedExam", "Preprocessor", "convert_dicom", "output_layout", "to_native"]
