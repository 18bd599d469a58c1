"""Where studies run: local worker processes (the default) or a Dask cluster; the same task either way."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from btk.console import logger
from btk.errors import EngineError, InputError, MissingExtraError
from btk.pipeline.options import PipelineOptions, StudyTask
from btk.pipeline.study import StudyResult, end_with_parent, run_study

#: Memory a study may need at its peak (brain extraction and registration), for the default worker count.
MEMORY_PER_WORKER = 6 * 1024**3
#: The Dask worker resource that stands for one GPU: start GPU workers with ``--resources GPU=1``.
GPU_RESOURCE = "GPU"


def default_workers(studies: int) -> int:
    """As many workers as studies, cores and memory (6 GiB each) allow."""
    cores = os.cpu_count() or 1
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        memory = MEMORY_PER_WORKER * cores
    return max(1, min(studies, cores, memory // MEMORY_PER_WORKER))


def _start_worker(threads: int, parent: int) -> None:
    """Initialise a local worker process: end with the parent, share the cores with the other workers."""
    end_with_parent(parent)
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"):
        os.environ[variable] = str(threads)


class LocalExecutor:
    """Run studies in ``workers`` local processes, each started fresh (spawn)."""

    def __init__(self, workers: int):
        if workers < 1:
            raise InputError(f"the number of workers must be at least 1, got {workers}")
        self.workers = workers

    def describe(self) -> str:
        return f"{self.workers} local worker process{'es' if self.workers > 1 else ''}"

    def run(self, tasks: Sequence[StudyTask], options: PipelineOptions) -> Iterator[StudyResult]:
        """Yield each study's result as it finishes."""
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        pool = ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(threads, os.getpid()),
        )
        try:
            futures = {pool.submit(run_study, task, options): task for task in tasks}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except BrokenProcessPool:
                    yield _lost(futures[future], "a worker process died (killed, or out of memory)")
        except BaseException:  # interrupted (Ctrl-C): stop the workers and what they started, now
            for process in list(getattr(pool, "_processes", {}).values()):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()


class DaskExecutor:
    """Run studies on a Dask cluster; GPU-bound studies take one ``GPU`` worker resource each."""

    def __init__(self, address: str):
        try:
            from distributed import Client
        except ImportError:
            raise MissingExtraError("a Dask scheduler was given but Dask is not installed", extra="pipeline") from None
        if not re.fullmatch(r"(tcp|tls)://[^:/\s]+:\d+/?", address):
            raise InputError(
                f"not a Dask scheduler address: {address!r}", hint="write tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786"
            )
        try:
            self.client = Client(address, timeout="15s")
        except (OSError, TimeoutError, ValueError) as error:
            raise EngineError(
                f"cannot reach the Dask scheduler at {address} ({error})",
                hint="start it with `dask scheduler` and workers with `dask worker ADDRESS`",
            ) from None
        self.address = address

    def describe(self) -> str:
        workers = self.client.scheduler_info().get("workers", {})
        return f"Dask cluster {self.address} ({len(workers)} workers)"

    def gpu_resources(self) -> bool:
        """Whether any worker advertises the ``GPU`` resource."""
        workers = self.client.scheduler_info().get("workers", {}).values()
        return any(GPU_RESOURCE in worker.get("resources", {}) for worker in workers)

    def run(self, tasks: Sequence[StudyTask], options: PipelineOptions) -> Iterator[StudyResult]:
        """Yield each study's result as it finishes."""
        from distributed import as_completed as dask_completed

        resources = None
        if options.uses_gpu:
            if self.gpu_resources():
                resources = {GPU_RESOURCE: 1}
            else:
                logger.info(
                    "No Dask worker advertises a GPU resource: studies are not limited to one per GPU "
                    "(start GPU workers with `dask worker ADDRESS --resources GPU=1`)"
                )
        futures = {
            self.client.submit(
                run_study, task, options, key=f"btk-{task.name}-{os.getpid()}", pure=False, resources=resources
            ): task
            for task in tasks
        }
        try:
            for future in dask_completed(futures):
                try:
                    yield future.result()
                except Exception as error:  # the worker died or the task could not be run
                    yield _lost(futures[future], f"the Dask task failed: {error.__class__.__name__}: {error}")
        finally:
            self.client.close()


def _lost(task: StudyTask, reason: str) -> StudyResult:
    return StudyResult(task.name, "failed", stage="worker", reason=reason)
