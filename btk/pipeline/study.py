"""Processing one study: its stages in order, skipping finished ones, each made atomic.

:func:`run_study` is the task a local worker process or a Dask worker runs. It never raises for a
problem of the study: it returns a :class:`StudyResult` saying what failed and why, so the batch goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from btk.console import logger
from btk.deid import guard
from btk.errors import BtkError
from btk.pipeline import markers
from btk.pipeline.options import PipelineOptions, StudyTask
from btk.pipeline.stages import Stage, StageResult, StudyContext, stages_for


@dataclass
class StudyResult:
    """What became of one study."""

    study: str
    status: str  # "ok" or "failed"
    stage: str = ""  # the stage that failed
    reason: str = ""
    seconds: float = 0.0
    stages: dict[str, str] = field(default_factory=dict)  # stage -> "ran" | "done before"
    folder: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def run_study(task: StudyTask, options: PipelineOptions) -> StudyResult:
    """Run every stage of one study that is not finished yet; record a failure instead of raising."""
    started = time.perf_counter()
    guard.register(task.study.identifiers)  # this process may not have read the study's headers itself
    folder = Path(options.output) / task.name
    result = StudyResult(task.name, "ok", folder=str(folder))
    if task.study.problem:
        return _failed(result, "discover", task.study.problem, started, folder)
    try:
        with markers.study_lock(folder), _study_log(folder):
            # Stage folders a killed run left: nobody else uses them while this run holds the study's lock.
            shutil.rmtree(markers.state_folder(folder) / "partial", ignore_errors=True)
            if options.force:
                markers.clear_markers(folder)
            context = StudyContext(task, options, folder)
            upstream_ran = False
            for stage in stages_for(task):
                result.stage = stage.name
                # a stage after one that ran again reads new inputs: its earlier outputs are stale
                result.stages[stage.name] = _run_stage(stage, context, reuse=not upstream_ran)
                upstream_ran = upstream_ran or result.stages[stage.name] == "ran"
    except BtkError as error:
        return _failed(result, result.stage, str(error), started, folder)
    except Exception as error:  # a bug or an unexpected failure of a tool: keep the traceback, go on
        log = markers.state_folder(folder) / "error.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(guard.redact(traceback.format_exc()), encoding="utf-8")
        reason = f"internal error in stage {result.stage}: {error.__class__.__name__}: {error} (traceback in {log})"
        return _failed(result, result.stage, reason, started, folder)
    result.stage = ""
    result.seconds = time.perf_counter() - started
    markers.write_status(folder, "done")
    return result


@contextmanager
def _study_log(folder: Path) -> Iterator[None]:
    """Append what the components log while this thread works on the study to ``<study>/.btk/log.txt``."""
    handler = logging.FileHandler(markers.state_folder(folder) / "log.txt", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    thread = threading.get_ident()
    handler.addFilter(lambda record: record.thread == thread)
    previous = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        handler.close()


def _run_stage(stage: Stage, context: StudyContext, reuse: bool = True) -> str:
    """Run one stage into a fresh folder, move it into place, then mark it complete.

    With ``reuse``, a stage whose marker shows it complete is not run again ("done before").
    """
    folder = context.folder
    marker = markers.read_marker(folder, stage.name) if reuse else None
    if marker is not None:
        context.outputs[stage.name] = markers.marker_outputs(folder, marker)
        context.details[stage.name] = marker.get("details", {})
        return "done before"
    markers.write_status(folder, stage.name)
    logger.info("%s: %s", context.name, stage.description)
    outputs, details = run_atomically(folder, stage.name, lambda partial: stage.run(context, partial))
    context.outputs[stage.name] = outputs
    context.details[stage.name] = details
    return "ran"


def run_atomically(folder: Path, name: str, produce: Callable[[Path], StageResult]) -> StageResult:
    """Make ``folder/name`` with ``produce`` so that it is complete or absent, then mark it complete.

    ``produce`` writes into a fresh, empty folder (``folder/.btk/partial/name``) and returns its outputs (name
    -> file in it) and details; the folder then replaces ``folder/name`` and the marker
    ``folder/.btk/name.json`` is written. The caller holds ``folder``'s lock (:func:`markers.study_lock`).

    Returns:
        The outputs, at their final place, and the details (with the seconds it took).
    """
    partial = markers.state_folder(folder) / "partial" / name
    final = folder / name
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    started = time.perf_counter()
    outputs, details = produce(partial)
    details = {**details, "seconds": round(time.perf_counter() - started, 2)}
    markers.remove_marker(folder, name)  # a marker never outlives the outputs it describes
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    outputs = {key: final / Path(path).resolve().relative_to(partial.resolve()) for key, path in outputs.items()}
    markers.write_marker(folder, name, outputs, details)
    return outputs, details


def _failed(result: StudyResult, stage: str, reason: str, started: float, folder: Path) -> StudyResult:
    result.status, result.stage, result.reason = "failed", stage, reason
    result.seconds = time.perf_counter() - started
    with contextlib.suppress(OSError, BtkError):  # an unwritable output folder is the failure being reported
        markers.write_status(folder, "failed")
    return result


def end_with_parent(parent: int | None = None) -> None:
    """Make this local worker process, and every process it starts, end when its parent dies (even by kill -9).

    The worker leads its own process group, which its tools' subprocesses (dcm2niix, registrations) join;
    a watchdog thread kills the whole group as soon as the worker is orphaned. Without this, workers of a
    killed ``btk run`` would go on writing while the next run starts.

    Args:
        parent: The process id of the parent that started this worker. Give it: a worker still starting up
            when its parent is killed is already orphaned here, and then ends at once instead of waiting
            forever for work.
    """
    os.setpgrp()
    parent = os.getppid() if parent is None else parent

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, daemon=True, name="btk-end-with-parent").start()
