"""The Segmentor: containerised BraTS segmentation algorithms on a local Docker engine.

>>> from btk.segment import Segmentor
>>> report = Segmentor(gpus=["0"]).run("exam_out/", algorithms=["brats23-faking-it"], output="seg/")
>>> filled = Segmentor().synthesise("exam_without_flair/", "brats25-syn-1", "exam_filled/")  # BraSyn

The algorithms are listed in a registry (:mod:`btk.segment.registry`); each speaks one input/output
contract (:mod:`btk.segment.contracts`); containers run without network, without capabilities, with
read-only inputs and as the invoking user (:mod:`btk.segment.engine`). Needs the ``segment`` extra.
"""

from __future__ import annotations

from btk.segment.exam import Exam, PartialExam
from btk.segment.registry import Algorithm, Registry, load_registry
from btk.segment.runner import AlgorithmRun, SegmentationReport, Segmentor
from btk.segment.synthesis import SynthesisReport

__all__ = [
    "Algorithm",
    "AlgorithmRun",
    "Exam",
    "PartialExam",
    "Registry",
    "SegmentationReport",
    "Segmentor",
    "SynthesisReport",
    "load_registry",
]
