"""The Pipeline: discover studies, run them locally or on Dask, then write the cohort summary."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from btk.console import logger
from btk.deid import output_salt
from btk.errors import InputError, MissingFileError, OutputError, unwritable_folder
from btk.evaluation import case_id
from btk.io import is_nifti, refuse_overlap
from btk.modalities import MODALITIES
from btk.pipeline.discovery import Study, discover, needing_only, refuse_other_space, with_synthesis
from btk.pipeline.executors import DaskExecutor, LocalExecutor, default_workers
from btk.pipeline.followup import ComparisonResult, compare_visits, visit_t1c
from btk.pipeline.manifest import write_manifest
from btk.pipeline.options import PipelineOptions, StudyTask
from btk.pipeline.progress import BatchProgress
from btk.pipeline.study import StudyResult
from btk.pipeline.visits import order_visits


@dataclass
class BatchResult:
    """The results of a run, one per study, and where the summary went.

    ``followup``: the comparison of the patient's visits (``longitudinal`` runs; None for the others).
    """

    output: Path
    results: list[StudyResult]
    seconds: float
    followup: ComparisonResult | None = None

    @property
    def ok(self) -> bool:
        """Whether every study succeeded (and, for a patient's visits, the comparison was made)."""
        compared = self.followup is None or self.followup.status != "refused"
        return compared and all(result.status == "ok" for result in self.results)

    @property
    def failed(self) -> list[StudyResult]:
        return [result for result in self.results if result.status != "ok"]


class Pipeline:
    """Preprocessor -> Segmentor -> Fusionator (-> evaluation) -> reports, for one exam or many studies.

    >>> from btk.pipeline import Pipeline
    >>> batch = Pipeline("out/", candidates="segmentations/").run("studies/")
    >>> batch.ok, [r.study for r in batch.failed]

    Args:
        output: Output folder (one sub-folder per study, plus ``manifest.csv`` and ``summary.csv``/``.html``).
        algorithms: Registered segmentation algorithms to run in Docker.
        candidates: Segmentations made elsewhere, in the studies' atlas space: a folder of NIfTI files (one exam) or of
            one sub-folder per study named like the study.
        reference: Reference segmentation(s) to evaluate against: a file (one exam) or a folder of files
            named like the studies.
        workers: Local worker processes (default: as many as studies, cores and memory allow).
        scheduler: Address of a Dask scheduler (``tcp://HOST:PORT``) to run the studies on instead.
        longitudinal: The input is one patient's folder whose studies are visits (time points): once they are
            done, they are compared (``OUT/compare/``, as ``btk compare``). How the visits are found and ordered:
            :mod:`btk.pipeline.visits`.
        visits: The NIfTI visits' folder names in order, baseline first (implies ``longitudinal``).
        **settings: Further :class:`PipelineOptions` (``method``, ``regions``, ``labels``, ``device``,
            ``fast``, ``atlas``, ``cpu``, ``gpus``, ``force``, ``simple``).
    """

    def __init__(
        self,
        output: str | Path,
        algorithms: Sequence[str] = (),
        candidates: str | Path | None = None,
        reference: str | Path | None = None,
        workers: int | None = None,
        scheduler: str | None = None,
        longitudinal: bool = False,
        visits: Sequence[str] | None = None,
        **settings: Any,
    ):
        self.options = PipelineOptions(Path(output).resolve(), tuple(algorithms), **settings)
        self.candidates = Path(candidates) if candidates is not None else None
        self.reference = Path(reference) if reference is not None else None
        self.workers = workers
        self.scheduler = scheduler
        self.visits = tuple(visits) if visits else None
        self.longitudinal = longitudinal or self.visits is not None

    def plan(self, input_path: str | Path) -> list[StudyTask]:
        """Find the studies and, for each, its candidate segmentations and reference."""
        if not self.options.algorithms and self.candidates is None:
            raise InputError(
                "nothing to segment with: no algorithm chosen and no candidate segmentations given",
                hint="pass --candidates DIR (segmentations made elsewhere, in the atlas space) or -a ALGORITHM",
            )
        for given, what in ((self.candidates, "candidates"), (self.reference, "reference")):
            if given is not None and not given.exists():
                raise MissingFileError(f"the {what} path does not exist", path=given)
        if self.candidates is not None and not self.candidates.is_dir():
            raise InputError(
                "the candidates path is not a folder",
                path=self.candidates,
                hint="give the folder holding the NIfTI files (one exam) or one sub-folder per study",
            )
        studies = discover(input_path, salt=output_salt(self.options.output))
        if self.options.synthesise:
            studies = [with_synthesis(study) for study in studies]
        if set(self.options.space.modalities) != set(MODALITIES):  # a native space: its modalities alone
            studies = [needing_only(study, self.options.space.modalities) for study in studies]
        if self.options.algorithms or self.options.synthesise:  # they work in one atlas space
            studies = [refuse_other_space(study, self.options.space.name) for study in studies]
        if self.longitudinal:
            studies = order_visits(studies, self.options.space.name, self.visits)
        single = len(studies) == 1
        return [
            StudyTask(study, *self._candidates_of(study, single), self._reference_of(study, single))
            for study in studies
        ]

    def _candidates_of(self, study: Study, single: bool) -> tuple[tuple[Path, ...], Path | None]:
        if self.candidates is None:
            return (), None
        folder = self.candidates / study.name
        if not folder.is_dir():
            if not single:
                return (), None
            folder = self.candidates
        return tuple(sorted(p for p in folder.iterdir() if p.is_file() and is_nifti(p))), folder.resolve()

    def _reference_of(self, study: Study, single: bool) -> Path | None:
        if self.reference is None or self.reference.is_file():
            return self.reference if single or self.reference is None else None
        matches = [p for p in self.reference.rglob("*.nii*") if case_id(p) == study.name]
        return matches[0] if matches else None

    def run(self, input_path: str | Path) -> BatchResult:
        """Process every study of ``input_path``; a failing study is recorded and the others go on.

        Everything that can be checked before a study starts is checked before anything is written: the
        options (when the Pipeline was made), the inputs, the workers and the Dask scheduler.
        """
        started = time.perf_counter()
        tasks = self.plan(input_path)
        self._check_candidates(tasks)
        executor = (
            DaskExecutor(self.scheduler)
            if self.scheduler
            else LocalExecutor(default_workers(len(tasks)) if self.workers is None else self.workers)
        )
        output = self.options.output
        refuse_overlap(output, [input_path, self.candidates, self.reference, *self.options.registry])
        _make_output_folder(output)
        _remove_stale_temporaries(output)
        manifest = output / "manifest.csv"
        write_manifest(manifest, tasks)
        logger.info(
            "%d stud%s found (manifest: %s); running on %s",
            len(tasks),
            "y" if len(tasks) == 1 else "ies",
            manifest,
            executor.describe(),
        )
        results: dict[str, StudyResult] = {}
        with BatchProgress(output, [t.name for t in tasks]) as display:
            for result in executor.run(tasks, self.options):
                results[result.study] = result
                display.finished(result.study, result.status)
                if result.status == "ok":
                    logger.info("%s: done in %.0f s", result.study, result.seconds)
                else:
                    logger.warning("%s: failed at %s: %s", result.study, result.stage, result.reason)
        ordered = [results[t.name] for t in tasks if t.name in results]
        write_manifest(manifest, tasks, results)
        followup = self._compare_visits(tasks, results) if self.longitudinal else None
        from btk.pipeline.summary import write_batch_summary

        write_batch_summary(
            output, tasks, ordered, pdf=self.options.pdf, followup=followup.record(output) if followup else None
        )
        return BatchResult(output, ordered, time.perf_counter() - started, followup)

    def _compare_visits(self, tasks: list[StudyTask], results: dict[str, StudyResult]) -> ComparisonResult:
        """The comparison of the patient's visits, once every visit is done (see :func:`compare_visits`)."""
        visits = [task for task in tasks if task.study.visit]  # in visit order (order_visits)
        t1c = {task.name: image for task in visits if (image := visit_t1c(task.study)) is not None}
        followup = compare_visits(
            self.options.output, [t.name for t in visits], results, force=self.options.force, t1c_images=t1c
        )
        if followup.status == "refused":
            logger.warning("comparison of the visits: %s", followup.reason)
        else:
            logger.info("comparison of the visits (%s): %s", followup.status, followup.folder)
        return followup

    def _check_candidates(self, tasks: list[StudyTask]) -> None:
        if self.options.algorithms or self.candidates is None:
            return
        if not any(task.candidates for task in tasks):
            raise InputError(
                "no candidate segmentations found for any study",
                path=self.candidates,
                hint="for one exam put the NIfTI files in the folder; for many, one sub-folder per study named "
                f"like the study ({', '.join(t.name for t in tasks[:3])}{', ...' if len(tasks) > 3 else ''})",
            )


def _make_output_folder(output: Path) -> None:
    """Create the output folder, or say clearly why it cannot be one (a file is in the way, no permission ...)."""
    if output.exists() and not output.is_dir():
        raise OutputError("the output path is a file, not a folder", path=output, hint="give a folder for --output")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise unwritable_folder(output, error, creating=True) from None


def _remove_stale_temporaries(output: Path) -> None:
    """Delete temporary files an interrupted run left beside the batch and report pages (never complete ones)."""
    for pattern in (".*.partial*", "*/report/.*.partial*"):
        for path in output.glob(pattern):
            path.unlink(missing_ok=True)
