"""Reproducible rigid or affine registration with ANTs (through antspyx), written as ITK ``.mat`` files.

Registration is made reproducible run to run by a fixed sampling seed and a single ITK thread: with several
threads, two identical ANTs runs give (slightly) different transforms. ITK reads its thread count once, when
it first runs anything in a process, so an earlier use of ANTs (a resampling, a user's own script) would fix
it for good. Every registration therefore runs in a fresh Python process that sets
``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` to 1 before it imports antspyx (:mod:`registration_worker`);
importing this module changes nothing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from btk.errors import BtkError, InputError, MissingExtraError, error_kind
from btk.io import DISK_FULL_ERRORS, disk_full
from btk.preprocess.output_folder import REGISTRATION_PREFIX
from btk.staging import OwnedFolder

#: Seed of ANTs' metric sampling; fixed so that two runs give the same transform.
RANDOM_SEED = 20240531
TRANSFORM_TYPES = ("rigid", "affine")
#: Metric sampling of the co-registrations: 10 % takes 11 s instead of 18 s for the three of the TCIA test exam
#: and keeps them within 0.12-0.17 mm of BraTS Toolkit's (0.08-0.14 mm at 25 %), far below a native voxel
#: (``python -m bench.registration --variants default sampling-0.10``).
COREGISTRATION_SAMPLING_RATE = 0.10


@dataclass(frozen=True)
class RegistrationSettings:
    """The ANTs parameters: BraTS Toolkit's (rigid, Mattes MI, 3 levels), with 25 % of the voxels sampled.

    BraTS Toolkit samples 50 %; 25 % halves the time and on the TCIA test exam keeps the T1-to-atlas transform
    within 0.64 mm of BraTS Toolkit's, mean over brain voxels. The co-registrations (T1c, T2, FLAIR to the T1
    of the same session) sample :data:`COREGISTRATION_SAMPLING_RATE`.

    Attributes:
        transform: ``"rigid"`` (BraTS default) or ``"affine"``.
        iterations: Iterations per resolution level.
        shrink_factors: Down-sampling per level.
        smoothing_sigmas: Gaussian smoothing per level, in voxels.
        sampling_rate: Fraction of voxels sampled by the metric (regular grid, seeded jitter).
        gradient_step: Optimiser step.
    """

    transform: str = "rigid"
    iterations: tuple[int, ...] = (1000, 500, 250)
    shrink_factors: tuple[int, ...] = (8, 4, 2)
    smoothing_sigmas: tuple[int, ...] = (3, 2, 1)
    sampling_rate: float = 0.25
    gradient_step: float = 0.1

    def __post_init__(self) -> None:
        for name in ("iterations", "shrink_factors", "smoothing_sigmas"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.transform not in TRANSFORM_TYPES:
            raise InputError(
                f"unknown registration type {self.transform!r}", hint=f"choose one of {', '.join(TRANSFORM_TYPES)}"
            )

    def as_dict(self) -> dict:
        """The settings as plain JSON-friendly values (for provenance)."""
        return {
            "transform": self.transform,
            "metric": "MattesMutualInformation[32 bins, regular sampling]",
            "iterations": list(self.iterations),
            "shrink_factors": list(self.shrink_factors),
            "smoothing_sigmas_vox": list(self.smoothing_sigmas),
            "sampling_rate": self.sampling_rate,
            "gradient_step": self.gradient_step,
            "random_seed": RANDOM_SEED,
            "itk_threads": 1,
            "initialisation": "centres of mass",
        }


def register(fixed: Path, moving: Path, transform_path: Path, settings: RegistrationSettings) -> Path:
    """Register ``moving`` onto ``fixed`` and write the moving-to-fixed transform to ``transform_path``.

    The ``.mat`` file follows the ANTs convention (``antsApplyTransforms -r fixed -i moving -t file`` maps
    ``moving`` into ``fixed``'s grid). The registration runs in a fresh process (one ITK thread), so the
    transform is the same whatever this process did before.
    """
    register_all([RegistrationJob(Path(fixed), Path(moving), Path(transform_path), settings)], workers=1)
    return transform_path


def register_in_this_process(fixed: Path, moving: Path, transform_path: Path, settings: RegistrationSettings) -> Path:
    """:func:`register` in the calling process: reproducible only if ITK has not run in it yet (a worker)."""
    ants_registration = _ants_registration()
    stage = "Rigid" if settings.transform == "rigid" else "Affine"
    with OwnedFolder(Path(tempfile.gettempdir()), REGISTRATION_PREFIX) as work:
        prefix = str(work / "reg_")
        args = [
            "--dimensionality",
            "3",
            "--float",
            "1",
            "--collapse-output-transforms",
            "1",
            "--initial-moving-transform",
            f"[{fixed},{moving},1]",
            "--transform",
            f"{stage}[{settings.gradient_step}]",
            "--metric",
            f"Mattes[{fixed},{moving},1,32,Regular,{settings.sampling_rate}]",
            "--convergence",
            f"[{_by(settings.iterations)},1e-6,10]",
            "--shrink-factors",
            _by(settings.shrink_factors),
            "--smoothing-sigmas",
            _by(settings.smoothing_sigmas) + "vox",
            "--use-histogram-matching",
            "0",
            "--winsorize-image-intensities",
            "[0.005,0.995]",
            "--random-seed",
            str(RANDOM_SEED),
            "--output",
            prefix,
        ]
        status = ants_registration(args)
        produced = Path(prefix + "0GenericAffine.mat")
        if status != 0 or not produced.exists():
            raise InputError(
                f"ANTs could not register the image (exit status {status})",
                path=moving,
                hint="check that both images show a head and are not empty",
            )
        try:
            transform_path.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(produced), transform_path)
        except OSError as error:
            if error.errno in DISK_FULL_ERRORS:
                raise disk_full(transform_path.parent) from None
            raise
    return transform_path


def _require_ants() -> None:
    """Raise :class:`MissingExtraError` if antspyx cannot be imported (the ``preprocess`` extra)."""
    try:
        found = importlib.util.find_spec("ants") is not None
    except ImportError:
        found = False
    if not found:
        raise MissingExtraError("ANTs (antspyx) is not installed: images cannot be registered", extra="preprocess")


def _ants_registration() -> Callable[[list[str]], int]:
    """antspyx's ``antsRegistration`` (arguments -> exit status), with ITK held to one thread in this process.

    Raises:
        MissingExtraError: antspyx is not installed (the ``preprocess`` extra).
    """
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"  # read once, when ANTs' ITK first starts
    try:
        from ants.internal import get_lib_fn, process_arguments
    except ImportError:
        raise MissingExtraError(
            "ANTs (antspyx) is not installed: images cannot be registered", extra="preprocess"
        ) from None
    run = get_lib_fn("antsRegistration")
    return lambda args: run(process_arguments(args))


def _by(values: tuple[int, ...]) -> str:
    """ANTs' per-level notation: (1000, 500, 250) -> "1000x500x250"."""
    return "x".join(map(str, values))


@dataclass(frozen=True)
class RegistrationJob:
    """One registration: ``moving`` onto ``fixed``, transform written to ``transform_path``."""

    fixed: Path
    moving: Path
    transform_path: Path
    settings: RegistrationSettings

    def command(self) -> list[str]:
        """The command running this job in a separate Python process."""
        job = {
            "fixed": str(self.fixed),
            "moving": str(self.moving),
            "transform_path": str(self.transform_path),
            "settings": asdict(self.settings),
        }
        return [sys.executable, "-m", "btk.preprocess.registration_worker", json.dumps(job), str(os.getpid())]


def register_all(jobs: list[RegistrationJob], workers: int | None = None, stop: threading.Event | None = None) -> None:
    """Run several registrations in parallel processes (one ITK thread each, so results stay reproducible).

    Separate interpreters (not ``multiprocessing``) so that callers' scripts need no ``__main__`` guard. The
    workers end with this process, even when it is killed with ``kill -9``.

    Args:
        jobs: The registrations; the longest should come first.
        workers: Processes at a time (default: the number of CPU cores).
        stop: When set (by another thread), the running workers are killed and no other starts.
    """
    _require_ants()  # before any worker starts: the error names the extra to install
    workers = worker_count(jobs, workers)
    stop = stop or threading.Event()
    pending = list(jobs)
    running: list[tuple[RegistrationJob, subprocess.Popen[str], IO[str]]] = []
    failures: list[tuple[RegistrationJob, str]] = []
    with contextlib.ExitStack() as files:
        try:
            while (pending or running) and not stop.is_set():
                while pending and len(running) < workers:
                    job = pending.pop(0)
                    errors: IO[str] = files.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8"))  # never full
                    process = subprocess.Popen(
                        job.command(), stdout=subprocess.DEVNULL, stderr=errors, text=True, env=_worker_environment()
                    )
                    running.append((job, process, errors))
                for entry in [entry for entry in running if entry[1].poll() is not None]:
                    running.remove(entry)
                    if entry[1].returncode != 0:
                        entry[2].seek(0)
                        failures.append((entry[0], entry[2].read().strip()))
                stop.wait(_POLL_SECONDS)
        finally:
            for _, process, _ in running:
                process.kill()
                process.wait()
    if failures:
        job, error = failures[0]
        raise _worker_error(job, error)


def worker_count(jobs: list[RegistrationJob], workers: int | None = None) -> int:
    """How many worker processes :func:`register_all` runs at a time for ``jobs`` (``workers``: the most
    wanted, default the number of CPU cores)."""
    return max(1, min(workers or os.cpu_count() or 1, len(jobs)))


#: How often :func:`register_all` looks at its workers (seconds); a registration takes seconds to minutes.
_POLL_SECONDS = 0.05


class BackgroundRegistrations:
    """Registrations that run in worker processes (:func:`register_all`) while the caller goes on, e.g. with
    the brain extraction that does not need them; leaving the ``with`` block by an exception kills them.

    >>> with BackgroundRegistrations(jobs) as registrations:
    ...     mask = extract_the_brain()
    ...     registrations.wait()  # raises what a registration raised
    """

    def __init__(self, jobs: list[RegistrationJob], workers: int | None = None):
        _require_ants()  # in the caller's thread, so that the error reaches it at once
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(jobs, workers), daemon=True)

    def _run(self, jobs: list[RegistrationJob], workers: int | None) -> None:
        try:
            register_all(jobs, workers, self._stop)
        except BaseException as error:  # handed to the caller's thread by wait()
            self._error = error

    def __enter__(self) -> BackgroundRegistrations:
        self._thread.start()
        return self

    def wait(self) -> None:
        """Wait for every registration to end; raise the error of the first that failed."""
        self._thread.join()
        if self._error is not None:
            raise self._error

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None or self._thread.is_alive():
            self._stop.set()
        self._thread.join()


def _worker_error(job: RegistrationJob, stderr: str) -> BtkError:
    """The error a failed worker reported (a BtkError as JSON on its last line), or a general one."""
    try:
        reported = json.loads(stderr.splitlines()[-1])
        return error_kind(reported["kind"])(reported["problem"], path=reported["path"], hint=reported["hint"])
    except (IndexError, ValueError, KeyError, TypeError):
        return InputError(
            "ANTs could not register the image" + (f" ({stderr.splitlines()[-1]})" if stderr else ""),
            path=job.moving,
            hint="check that both images show a head and are not empty",
        )


def _worker_environment() -> dict[str, str]:
    """The environment of a worker: this one, with btk importable even if it is not installed."""
    package_root = str(Path(__file__).resolve().parents[2])
    paths = [package_root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
