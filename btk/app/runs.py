"""Runs started from the app: the same :class:`btk.pipeline.Pipeline` as ``btk run``, in a child process.

The child process is what makes a run cancellable: cancelling sends it SIGINT, which interrupts
:meth:`Pipeline.run <btk.pipeline.Pipeline.run>` exactly as Ctrl-C interrupts ``btk run`` (its worker
processes are killed, every finished stage keeps its completion marker, an unfinished one leaves only a
hidden partial folder that the next run removes). Progress is read from the output folder, as the
command line's progress display reads it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from btk.console import console, logger
from btk.deid import guard
from btk.errors import BtkError, InputError
from btk.pipeline import Pipeline

#: How long a cancelled run may take to stop before its process is killed.
CANCEL_GRACE_SECONDS = 20.0


@dataclass
class RunSettings:
    """The options of a run, as the app's form sends them (the same as ``btk run``'s)."""

    algorithms: tuple[str, ...] = ()
    track: str | None = None
    method: str = "simple"
    labels: str = "auto"
    fast: bool = True
    cpu: bool = False
    regions: bool = False
    force: bool = False

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> RunSettings:
        """Read the form's JSON; unknown fields and wrong types are refused with one clear message."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(payload) - known)
        if unknown:
            raise InputError(f"unknown run option(s): {', '.join(unknown)}")
        settings = cls(**payload)
        if not isinstance(settings.algorithms, (list, tuple)) or not all(
            isinstance(name, str) and name for name in settings.algorithms
        ):
            raise InputError("algorithms must be a list of algorithm names")
        settings.algorithms = tuple(settings.algorithms)
        for name in ("fast", "cpu", "regions", "force"):
            if not isinstance(getattr(settings, name), bool):
                raise InputError(f"the option {name} must be true or false")
        for name in ("method", "labels"):
            if not isinstance(getattr(settings, name), str):
                raise InputError(f"the option {name} must be text")
        if settings.track is not None and not isinstance(settings.track, str):
            raise InputError("the option track must be text")
        return settings

    def pipeline(self, output: Path, candidates: Path | None) -> Pipeline:
        """The pipeline these settings describe; its options are checked here, before anything starts."""
        algorithms = list(self.algorithms)
        if self.track and (algorithms or candidates is not None):
            raise InputError("a track chooses the algorithm when none is named", hint="choose algorithms or a track")
        if self.track:
            from btk.segment import Segmentor

            algorithms = [Segmentor(cpu=self.cpu).default_algorithm(self.track)]
        return Pipeline(
            output,
            algorithms=algorithms,
            candidates=candidates,
            method=self.method,
            labels=self.labels,
            fast=self.fast,
            cpu=self.cpu,
            regions=self.regions,
            force=self.force,
        )


@dataclass
class Run:
    """One run of the app: what it processes (as the user chose it) and how it stands."""

    id: int
    input: str
    started: float = field(default_factory=time.time)
    state: str = "running"  # running | cancelling | done | failed | cancelled | error
    message: str = ""
    ended: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RunManager:
    """Starts one run at a time in a child process, follows it, cancels it."""

    def __init__(self, output: Path):
        self.output = output
        self.run: Run | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._lock = threading.Lock()
        self._count = 0

    @property
    def busy(self) -> bool:
        """Whether a run is going on (or stopping)."""
        return self.run is not None and self.run.state in ("running", "cancelling")

    def start(self, pipeline: Pipeline, input_path: Path, label: str) -> Run:
        """Start ``pipeline`` on ``input_path`` (``label``: how the app shows the input).

        Raises:
            InputError: When a run is going on already.
        """
        with self._lock:
            if self.busy:
                raise InputError("a run is going on already", hint="wait until it ends, or cancel it")
            self._count += 1
            context = multiprocessing.get_context("spawn")
            results: Queue = context.Queue()
            process = context.Process(
                target=_run_pipeline, args=(pipeline, str(input_path), results), name="btk-app-run", daemon=False
            )
            run = Run(self._count, label)
            process.start()
            self.run, self._process = run, process
        threading.Thread(target=self._follow, args=(run, process, results), daemon=True, name="btk-app-follow").start()
        logger.info("run %d started", run.id)
        return run

    def cancel(self) -> Run | None:
        """Ask the current run to stop (as Ctrl-C stops ``btk run``); returns it, or None when none is going on."""
        with self._lock:
            run, process = self.run, self._process
            if run is None or process is None or run.state != "running":
                return run
            run.state = "cancelling"
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGINT)  # type: ignore[arg-type]
        return run

    def stop(self, timeout: float = CANCEL_GRACE_SECONDS) -> None:
        """Cancel the current run and wait until its process has ended (killed after ``timeout`` seconds)."""
        self.cancel()
        process = self._process
        if process is None:
            return
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()

    def _follow(self, run: Run, process: multiprocessing.process.BaseProcess, results: Queue) -> None:
        """Wait for the run's process to end, then record how the run ended."""
        outcome: dict[str, Any] = {}
        while not outcome and process.is_alive():
            with contextlib.suppress(queue.Empty):
                outcome = results.get(timeout=0.5)
        if not outcome:  # ended: what it said last may still be in the queue
            with contextlib.suppress(queue.Empty):
                outcome = results.get(timeout=1.0)
        process.join()
        with self._lock:
            run.ended = time.time()
            if outcome.get("error"):
                run.state, run.message = "error", str(outcome["error"])
            elif run.state == "cancelling" or outcome.get("cancelled"):
                run.state, run.message = "cancelled", "cancelled; finished stages are kept, the next run resumes"
            elif "studies" in outcome:
                failed = int(outcome["failed"])
                run.state = "failed" if failed else "done"
                run.message = f"{outcome['studies'] - failed} done, {failed} failed"
            else:
                run.state, run.message = "error", f"the run's process ended unexpectedly (exit code {process.exitcode})"
        logger.info("run %d: %s", run.id, run.state)


def _run_pipeline(pipeline: Pipeline, input_path: str, results: Queue) -> None:
    """The run's process: ``pipeline.run(input_path)``; reports how it ended on ``results``.

    It leads its own process group, so a Ctrl-C in the server's terminal reaches the server only, which
    then cancels the run once.
    """
    os.setpgrp()
    console.quiet = True  # the progress is shown in the browser; each study's log is in <study>/.btk/log.txt
    try:
        batch = pipeline.run(input_path)
    except BtkError as error:
        results.put({"error": guard.redact(str(error))})
    except KeyboardInterrupt:
        results.put({"cancelled": True})
    except Exception as error:  # a bug: say what, without a traceback that may name patient folders
        results.put({"error": guard.redact(f"internal error: {error.__class__.__name__}: {error}")})
    else:
        results.put({"studies": len(batch.results), "failed": len(batch.failed)})
