"""The pipeline: Preprocessor -> Segmentor -> Fusionator (-> evaluation) -> reports, for one exam or many.

>>> from btk.pipeline import Pipeline
>>> batch = Pipeline("out/", candidates="segmentations/").run("studies/")

Each study goes through its stages (:mod:`btk.pipeline.stages`) in its own output folder; every stage
writes into a fresh folder that is moved into place when it succeeds, then marked complete, so an
interrupted run resumes where it stopped and never leaves a half-written output. Studies run in local
worker processes or on a Dask cluster (``scheduler="tcp://HOST:PORT"``).
"""

from __future__ import annotations

from btk.pipeline.batch import BatchResult, Pipeline
from btk.pipeline.discovery import Study, discover
from btk.pipeline.options import PipelineOptions, StudyTask
from btk.pipeline.study import StudyResult, run_study

__all__ = ["BatchResult", "Pipeline", "PipelineOptions", "Study", "StudyResult", "StudyTask", "discover", "run_study"]
