"""The Segmentor: containerised BraTS segmentation algorithms on a local Docker engine.

>>> from btk.segment import Segmentor
>>> report = Segmentor(gpus=["0"]).run("exam_out/", algorithms=["brats23-faking-it"], output="seg/")

The algorithms are listed in a registry (:mod:`btk.segment.registry`); each speaks one input/output
contract (:mod:`btk.segment.contracts`); containers run without network, without capabilities, with
read-only inputs and as the invoking user (:mod:`btk.segment.engine`). Needs the ``segment`` extra.
"""

from __future__ import annotations

from btk.segment.exam import Exam
from btk.segment.registry import Algorithm, Registry, load_registry
from btk.segment.runner import AlgorithmRun, SegmentationReport, Segmentor

__all__ = ["Algorithm", "AlgorithmRun", "Exam", "Registry", "SegmentationReport", "Segmentor", "load_registry"]
