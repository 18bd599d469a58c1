"""The Segmentor: run several containerised algorithms on one exam, one failure never stopping the others."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TextIO

import nibabel as nib

from btk import __version__
from btk.console import logger, progress
from btk.errors import (
    BtkError,
    ContainerError,
    InputError,
    MissingFileError,
    OutputError,
    OutputExistsError,
    unwritable_folder,
)
from btk.io import atomic_path, guard_output, refuse_overlap, save_float_image, save_json, save_label_map
from btk.labels import LabelConvention, get_convention, holding_convention, labels_advice
from btk.segment.additional_files import require_cached
from btk.segment.contracts import Contract, Staging, contract_for
from btk.segment.engine import ContainerSpec, Engine, RunOutcome
from btk.segment.exam import Exam, PartialExam, exam_in
from btk.segment.gpus import Gpu, GpuPool, Lane, assign_lane, detect_gpus, select_gpus
from btk.segment.leftovers import make_workdir, remove_leftovers
from btk.segment.logs import BoundedLog
from btk.segment.outputs import checked_image, checked_result
from btk.segment.registry import DEFAULT_TRACKS, Algorithm, Registry, check_track, common_space, load_registry
from btk.segment.synthesis import SYNTHESIS_RECORD, SynthesisReport, copy_real_modalities, synthetic_file_name
from btk.spaces import space_of_grid

Status = Literal["ok", "failed", "timeout", "skipped"]


@dataclass
class AlgorithmRun:
    """What happened to one algorithm."""

    algorithm: str
    status: Status
    seconds: float = 0.0
    message: str = ""
    output: Path | None = None
    device: str = "-"
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class SegmentationReport:
    """The runs of one :meth:`Segmentor.run`, in the order the algorithms were asked for."""

    exam: Exam | PartialExam
    output: Path
    labels: str
    runs: list[AlgorithmRun]

    @property
    def ok(self) -> bool:
        """Whether every algorithm produced a segmentation (skipped ones count as not ok)."""
        return all(run.status == "ok" for run in self.runs)

    @property
    def outputs(self) -> dict[str, Path]:
        """Algorithm -> segmentation written."""
        return {run.algorithm: run.output for run in self.runs if run.output is not None}

    def to_dict(self) -> dict:
        """A JSON-ready summary (also written as ``SEG_DIR/segment.json``)."""
        return {
            "btk_version": __version__,
            "exam": {m: str(p) for m, p in self.exam.files().items()},
            "labels": self.labels,
            "runs": [
                {
                    "algorithm": r.algorithm,
                    "status": r.status,
                    "seconds": round(r.seconds, 3),
                    "message": r.message,
                    "output": r.output.name if r.output else None,
                    "device": r.device,
                    "timings": {k: round(v, 4) for k, v in r.timings.items()},
                }
                for r in self.runs
            ],
        }


class Segmentor:
    """Run registered segmentation algorithms in locked-down Docker containers.

    >>> from btk.segment import Segmentor
    >>> report = Segmentor().run("exam_out/", algorithms=["brats23-faking-it", "btk-unet"], output="seg/")
    >>> report.ok, report.outputs    # (True, {'brats23-faking-it': Path('seg/brats23-faking-it.nii.gz'), ...})

    Args:
        registry: A loaded registry, or extra registry files on top of the shipped one.
        gpus: GPU indices to use (default: all found); ignored with ``cpu``.
        cpu: Use no GPU: GPU-optional algorithms run on the CPU, GPU-only ones are skipped.
        pull: Pull missing images; with False a missing image is an error.
        labels: Label convention of the written segmentations (each result is converted to it). By default,
            the one that holds the chosen algorithms' own conventions (:func:`btk.labels.holding_convention`:
            brats2023 for adult glioma before treatment, brats2024-post with post-treatment entries,
            brats2024-ped for paediatric 2024-2025 ones).
        timeout: Seconds per algorithm, instead of each entry's own limit.
        memory: Memory limit per container (``"16g"``).
        cpus: CPU limit per container (``2.5``).
        force: Overwrite existing segmentations.
        user: ``(uid, gid)`` the containers run as and the outputs belong to (default: the invoking user).
    """

    def __init__(
        self,
        registry: Registry | str | Path | Sequence[str | Path] | None = None,
        *,
        gpus: Sequence[str] | None = None,
        cpu: bool = False,
        pull: bool = True,
        labels: str | None = None,
        timeout: float | None = None,
        memory: str | None = None,
        cpus: float | None = None,
        force: bool = False,
        user: tuple[int, int] | None = None,
        engine: Engine | None = None,
    ):
        self.registry = registry if isinstance(registry, Registry) else load_registry(registry)
        self.labels = get_convention(labels) if labels is not None else None
        self.wanted_gpus = None if gpus is None else [str(g) for g in gpus]
        self.cpu = cpu
        self.pull = pull
        if timeout is not None and timeout <= 0:
            raise InputError("the timeout must be positive", hint="give seconds, e.g. --timeout 1800")
        self.timeout = timeout
        if memory is not None and not re.fullmatch(r"[0-9]+(\.[0-9]+)?[bkmgBKMG]?", memory.strip()):
            raise InputError(f"cannot read the memory limit {memory!r}", hint="give e.g. --memory 16g or 512m")
        if cpus is not None and cpus <= 0:
            raise InputError("the CPU limit must be positive", hint="give e.g. --cpus 4 or 2.5")
        self.memory = memory.strip() if memory else None
        self.cpus = cpus
        self.force = force
        self.user = user or (os.getuid(), os.getgid())
        self._engine = engine

    @property
    def engine(self) -> Engine:
        """The Docker engine, connected on first use."""
        if self._engine is None:
            self._engine = Engine.connect()
        return self._engine

    def run(
        self,
        exam: Exam | PartialExam | str | Path,
        algorithms: Sequence[str] | None = None,
        output: str | Path = "segmentations",
        weights: Mapping[str, str | Path] | None = None,
        on_done: Callable[[AlgorithmRun], None] | None = None,
        track: str | None = None,
    ) -> SegmentationReport:
        """Segment ``exam`` with ``algorithms`` into ``output/<algorithm>.nii.gz``.

        Without ``algorithms``, every entry btk can run of ``track`` (default: adult glioma, the tracks
        ``glioma`` and ``glioma-post``; see :data:`btk.segment.registry.DEFAULT_TRACKS`).

        ``weights`` maps an algorithm to a host folder bound read-only where its image reads weights (the
        entry's ``weights_mount``). Missing images are pulled first (unless ``pull=False``). Logs go to
        ``output/logs/<algorithm>.log``, a summary to ``output/segment.json``. GPU algorithms run
        concurrently, one per GPU; CPU algorithms one after another. ``on_done`` is called after each one.

        An exam may lack modalities that no chosen algorithm reads (a T1c alone for meningioma radiotherapy);
        an algorithm that reads a missing one is refused before anything runs (with ``--all``: left out).
        """
        exam = exam if isinstance(exam, (Exam, PartialExam)) else exam_in(exam)
        reference = exam.reference()
        entries = self._readable(self._entries(algorithms, track), exam, every=algorithms is None)
        entries = self._in_exam_space(entries, reference, every=algorithms is None)
        labels, entries = self._writing_convention(entries, every=algorithms is None)
        entries, folders = self._additional_files(entries, self._weights(weights or {}, entries), algorithms is None)
        output = Path(output)
        refuse_overlap(output, [*exam.files().values(), *folders.values()])  # never write into the inputs
        engine = self.engine
        remove_leftovers(engine)  # of earlier runs that were killed: their containers and exam copies
        self._check_outputs(output, entries)
        gpus = select_gpus(detect_gpus(), self.wanted_gpus, self.cpu)
        lanes = {a.name: assign_lane(a, gpus, self.cpu) for a in entries}
        runs: dict[str, AlgorithmRun] = {}
        lock = threading.Lock()

        def finish(run: AlgorithmRun) -> None:
            with lock:
                runs[run.algorithm] = run
            if on_done:
                on_done(run)

        for algorithm in entries:
            reason = lanes[algorithm.name].skip
            if reason:
                logger.warning("%s: skipped: %s", algorithm.name, reason)
                skipped = AlgorithmRun(algorithm.name, "skipped", message=reason)
                _write_log(output, algorithm, skipped)
                finish(skipped)
        # Pulls first: they show their own progress bar, and a failed pull only fails its algorithm.
        ready = [a for a in entries if a.name not in runs and self._image_ready(engine, a, output, finish)]
        with progress() as bar:
            task = bar.add_task(f"Segmenting {exam.name}", total=len(ready))

            def run_one(algorithm: Algorithm, gpu: Gpu | None) -> None:
                bar.update(task, description=f"Segmenting {exam.name}: {algorithm.name} on the {_device(gpu)}")
                finish(
                    self._run_one(
                        engine,
                        algorithm,
                        exam,
                        gpu,
                        folders.get(algorithm.name),
                        _segmentation(reference, output, labels),
                        output,
                    )
                )
                bar.advance(task)

            _run_in_lanes(ready, lanes, gpus, run_one, engine)
        for run in runs.values():  # with --force: no segmentation from an earlier run may pose as this run's
            if run.status != "ok":
                (output / f"{run.algorithm}.nii.gz").unlink(missing_ok=True)
        report = SegmentationReport(exam, output, labels.name, [runs[a.name] for a in entries])
        with _disk("write the summary of this run", output / "segment.json", _OUTPUT_HINT, writing=True):
            save_json(report.to_dict(), output / "segment.json")
        return report

    def synthesise(
        self,
        exam: PartialExam | str | Path,
        algorithm: str,
        output: str | Path,
        weights: str | Path | None = None,
    ) -> SynthesisReport:
        """Fill the one modality ``exam`` lacks with a synthesis (BraSyn) image: a complete exam in ``output``.

        ``output`` gets the three real modalities, the synthetic one as ``<exam>-synthetic-<suffix>.nii.gz``
        and ``synthesis.json`` (which modality is synthetic, by what); it is written atomically (complete or
        not at all) and replaced only with ``force`` and only if btk wrote it. The image runs locked down like
        a segmentation algorithm, and its result is checked (on the exam's grid, finite, not blank).

        Raises:
            BtkError: The entry is no synthesis image, the exam does not lack exactly one modality, the
                output is taken, or the run failed (with the reason and the log's last words).
        """
        from btk.preprocess.output_folder import built_atomically

        exam = exam if isinstance(exam, PartialExam) else PartialExam.from_folder(exam)
        entry = self.registry.get(algorithm)
        if entry.output != "image":
            raise InputError(
                f"{algorithm} segments; it does not synthesise a missing modality",
                hint="choose a missing-mri algorithm: btk algorithms list --track missing-mri",
            )
        if len(exam.missing) != 1:
            raise InputError(
                f"synthesis fills exactly one missing modality, and this exam lacks "
                f"{', '.join(exam.missing) or 'none'}",
                hint="give an exam in an atlas space (btk preprocess) with three of t1, t1c, t2 and flair",
            )
        modality = exam.missing[0]
        reference = exam.reference()
        _, folders = self._additional_files([entry], self._weights({algorithm: weights} if weights else {}, [entry]))
        output = guard_output(
            Path(output).absolute(), [*exam.files().values(), *folders.values()], force=self.force, folder=True
        )
        engine = self.engine
        remove_leftovers(engine)
        lane = assign_lane(entry, select_gpus(detect_gpus(), self.wanted_gpus, self.cpu), self.cpu)
        if lane.skip:
            raise InputError(f"{algorithm}: {lane.skip}", hint="run it on a machine with a GPU")
        engine.ensure_image(entry.reference, self.pull)
        logger.info("Synthesising the missing %s of %s with %s", modality, exam.name, algorithm)
        with built_atomically(output) as folder:
            inputs = copy_real_modalities(exam, folder)
            target = folder / synthetic_file_name(exam.name, modality)

            def deliver(_: Algorithm, result: Path) -> tuple[Path, str]:
                data = checked_image(result, reference)
                with _disk("write the synthesised image", target, _OUTPUT_HINT, writing=True):
                    save_float_image(data, reference, target)
                return target, f"synthesised {modality}"

            gpu = lane.gpus[0] if lane.gpus else None
            run = self._run_one(engine, entry, exam, gpu, folders.get(algorithm), deliver, folder)
            if run.status != "ok":
                hint = "see the log above (with --verbose)"
                with contextlib.suppress(OSError):  # a full disk must not hide why the synthesis failed
                    kept = Path(tempfile.mkdtemp(prefix="btk-synthesis-")) / f"{algorithm}.log"
                    shutil.copyfile(folder / "logs" / f"{algorithm}.log", kept)
                    hint = f"see its log: {kept}"
                raise ContainerError(f"the synthesis with {algorithm} failed: {run.message}", hint=hint)
            report = SynthesisReport(folder, modality, target, algorithm, entry.reference, run.seconds, inputs)
            save_json(report.to_dict(), folder / SYNTHESIS_RECORD)
        return replace(
            report, folder=output, image=output / target.name, inputs={m: output / p.name for m, p in inputs.items()}
        )

    def default_algorithm(self, track: str | None = None) -> str:
        """The algorithm run when none is named: the top-ranked of the newest year of ``track`` (default:
        adult glioma), one that runs without a GPU when this Segmentor uses none
        (:meth:`~btk.segment.registry.Registry.default_for`)."""
        chosen = self.registry.default_for(track or DEFAULT_TRACKS[0], cpu=self.cpu)
        logger.info(
            "No algorithm named: running %s, ranked %s in the BraTS %d %s track (name others with -a)",
            chosen.name,
            chosen.rank,
            chosen.year,
            chosen.track_name,
        )
        return chosen.name

    def container_spec(self, algorithm: Algorithm, staging: Staging, gpu: Gpu | None) -> ContainerSpec:
        """The container for one algorithm: the invoking user unless the image needs root, its GPU, limits."""
        return ContainerSpec(
            image=algorithm.reference,
            command=staging.command,
            mounts=staging.mounts,
            user="0:0" if algorithm.needs_root else f"{self.user[0]}:{self.user[1]}",
            name=algorithm.name,
            gpus=(gpu.index,) if gpu else (),
            shm_size=algorithm.shm_size,
            memory=self.memory,
            cpus=self.cpus,
        )

    def _entries(self, algorithms: Sequence[str] | None, track: str | None = None) -> list[Algorithm]:
        if algorithms is None:  # all of the track that btk can run (not synthesis, a label convention btk knows)
            tracks = DEFAULT_TRACKS if track is None else (check_track(track),)
            of_track = [a for a in self.registry.algorithms if a.track_name in tracks]
            entries = [a for a in of_track if a.unsupported() is None]
            left_out = [a.name for a in of_track if a.unsupported() is not None]
            if left_out:
                logger.info("Not run (btk cannot run them yet): %s", ", ".join(left_out))
        else:
            entries = [self.registry.get(name) for name in dict.fromkeys(algorithms)]
        if not entries:
            raise InputError("no algorithm chosen", hint="pass -a NAME (several times) or --all")
        for algorithm in entries:
            reason = algorithm.unsupported()
            if reason:
                raise InputError(f"btk cannot run {algorithm.name}: {reason}", hint="choose another algorithm")
        return entries

    def _readable(self, entries: list[Algorithm], exam: Exam | PartialExam, every: bool) -> list[Algorithm]:
        """The entries whose modalities the exam has; one that reads a missing modality is refused (with
        ``--all``: left out and named)."""
        present = set(exam.files())
        lacking = {a.name: [m for m in a.modalities if m not in present] for a in entries}
        misfits = [a for a in entries if lacking[a.name]]
        if misfits and not every:
            described = "; ".join(f"{a.name} reads {', '.join(lacking[a.name])}" for a in misfits)
            raise InputError(
                f"the exam lacks modalities that the algorithms read ({described}; the exam has "
                f"{', '.join(sorted(present))})",
                hint="add the missing images, synthesise one with `btk synthesise`, or choose algorithms that "
                "read only what the exam has",
            )
        if misfits:
            logger.info("Not run (the exam lacks what they read): %s", ", ".join(a.name for a in misfits))
        kept = [a for a in entries if not lacking[a.name]]
        if not kept:
            raise InputError("no algorithm chosen", hint="pass -a NAME (several times) or --all")
        return kept

    def _in_exam_space(self, entries: list[Algorithm], reference: nib.Nifti1Image, every: bool) -> list[Algorithm]:
        """The entries that expect the atlas space the exam lies in (named ones must all do, and agree; with
        ``--all`` the others are left out and named). An exam on no known space's grid is not checked."""
        space = space_of_grid(reference.shape, reference.affine, tolerance_mm=1e-2)
        if every:
            if space is None:
                return entries
            kept = [a for a in entries if a.atlas_space == space.name]
            others = [a.name for a in entries if a.atlas_space != space.name]
            if others:
                logger.info("Not run (they expect another atlas space than %s): %s", space.name, ", ".join(others))
            if not kept:
                raise InputError(
                    f"no algorithm of the chosen tracks expects the exam's atlas space, {space.name}",
                    hint="choose a track whose algorithms work in that space, or preprocess the exam with "
                    "`btk preprocess --atlas SPACE`",
                )
            return kept
        wanted = common_space(entries)
        if space is not None and wanted is not None and wanted != space.name:
            raise InputError(
                f"the exam is in the {space.name} space ({space.grid.describe()}), but "
                f"{', '.join(a.name for a in entries)} expect{'s' if len(entries) == 1 else ''} the {wanted} space",
                hint=f"preprocess the raw exam with `btk preprocess --atlas {wanted}` (or use `btk run`, which "
                "preprocesses to the space the algorithms need)",
            )
        return entries

    def _writing_convention(self, entries: list[Algorithm], every: bool) -> tuple[LabelConvention, list[Algorithm]]:
        """The convention the segmentations are written in, and the entries whose labels it can hold.

        An entry whose classes the convention cannot hold (a paediatric cystic component in a glioma
        convention, a cavity in a pre-treatment one) is refused before anything runs; with ``--all`` it is
        left out and named instead.
        """
        declared = {a.name: get_convention(a.labels) for a in entries if a.labels}
        target = self.labels or holding_convention(list(declared.values()))
        missing = {name: target.classes_missing_for(convention) for name, convention in declared.items()}
        misfits = [a for a in entries if missing.get(a.name)]
        if misfits and not every:
            described = "; ".join(
                f"{a.name} writes {declared[a.name].name} labels ({', '.join(missing[a.name])})" for a in misfits
            )
            raise InputError(
                f"the segmentations cannot all be written in the {target.name} convention: {described}",
                hint=labels_advice(list(declared.values())),
            )
        if misfits:
            logger.info(
                "Not run (their labels cannot be written in %s; pass --labels to run them): %s",
                target.name,
                ", ".join(a.name for a in misfits),
            )
        kept = [a for a in entries if a not in misfits]
        if not kept:
            raise InputError("no algorithm chosen", hint="pass -a NAME (several times) or --all")
        return target, kept

    def _check_outputs(self, output: Path, entries: list[Algorithm]) -> None:
        if output.exists() and not output.is_dir():
            raise OutputError("the output must be a folder", path=output)
        existing = [output / f"{a.name}.nii.gz" for a in entries if (output / f"{a.name}.nii.gz").exists()]
        if existing and not self.force:
            raise OutputExistsError(
                f"segmentations exist already ({', '.join(p.name for p in existing)})",
                path=output,
                hint="pass --force to overwrite them, or choose another output folder",
            )
        try:
            (output / "logs").mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise unwritable_folder(output, error, creating=True) from None
        if not os.access(output, os.W_OK) or not os.access(output / "logs", os.W_OK):
            raise unwritable_folder(output)

    def _weights(self, weights: Mapping[str, str | Path], entries: list[Algorithm]) -> dict[str, Path]:
        """Check the weights folders before anything runs: known algorithm, one that reads weights, a folder."""
        chosen = {a.name: a for a in entries}
        folders = {}
        for name, folder in weights.items():
            algorithm = self.registry.get(name)
            folder = Path(folder)
            if not folder.is_dir():
                raise MissingFileError(f"the weights folder of {name} does not exist or is not a folder", path=folder)
            if contract_for(algorithm).weights_target() is None:
                raise InputError(
                    f"{name} takes no weights folder (its registry entry has no weights_mount)",
                    path=folder,
                    hint="drop the weights for this algorithm, or add weights_mount to its registry entry",
                )
            if name in chosen:
                folders[name] = folder
        return folders

    def _additional_files(
        self, entries: list[Algorithm], folders: dict[str, Path], every: bool = False
    ) -> tuple[list[Algorithm], dict[str, Path]]:
        """Mount each entry's cached additional files where no ``--weights`` folder is given; an entry whose
        files are not cached is refused before anything runs (with ``--all``: left out and named)."""
        kept, left_out = [], []
        for algorithm in entries:
            if algorithm.additional_files is not None and algorithm.name not in folders:
                try:
                    folders = {**folders, algorithm.name: require_cached(algorithm)}
                except InputError:
                    if not every:
                        raise
                    left_out.append(algorithm.name)
                    continue
            kept.append(algorithm)
        if left_out:
            logger.info(
                "Not run (their additional files are not cached; see btk algorithms pull): %s", ", ".join(left_out)
            )
        if not kept:
            raise InputError("no algorithm chosen", hint="pass -a NAME (several times) or --all")
        return kept, folders

    def _image_ready(
        self, engine: Engine, algorithm: Algorithm, output: Path, failed: Callable[[AlgorithmRun], None]
    ) -> bool:
        """Whether the algorithm's image is present (pulled now if allowed); a failed run is reported if not."""
        start = time.perf_counter()
        try:
            engine.ensure_image(algorithm.reference, self.pull)
            return True
        except BtkError as error:
            run = AlgorithmRun(algorithm.name, "failed", time.perf_counter() - start, _one_line(error))
            _write_log(output, algorithm, run)
            logger.warning("%s: failed - %s", algorithm.name, run.message)
            failed(run)
            return False

    def _run_one(
        self,
        engine: Engine,
        algorithm: Algorithm,
        exam: Exam | PartialExam,
        gpu: Gpu | None,
        weights: Path | None,
        deliver: Deliver,
        output: Path,
    ) -> AlgorithmRun:
        """Run one algorithm on the exam and report how it went; its failures are reported, not raised
        (except an interruption). Its log is written (into ``output/logs/``) and its temporary folder
        removed whatever happens."""
        run = AlgorithmRun(algorithm.name, "failed", device=_device(gpu))
        start = time.perf_counter()
        logger.info("Running %s on the %s", algorithm.name, _device(gpu))
        attempt = _Attempt()
        try:
            contract, staging = self._stage(algorithm, exam, gpu, weights, run, attempt)
            self._run_container(engine, algorithm, staging, run, attempt)
            self._collect(algorithm, contract, staging, run, attempt, deliver)
        except BtkError as error:
            run.message = _one_line(error)
        except Exception as error:  # a bug must not stop the other algorithms: report it as this one's failure
            logger.debug("%s: internal error", algorithm.name, exc_info=True)
            run.message = f"internal error {error.__class__.__name__}: {error} (run with --verbose for details)"
        except KeyboardInterrupt:
            run.message = "interrupted (Ctrl-C); the container was removed"
            raise
        finally:
            if attempt.log is not None:
                attempt.log.close()
            run.seconds = time.perf_counter() - start
            # before the clean-up, which removes the log
            _write_log(output, algorithm, run, attempt.spec, attempt.outcome, attempt.log)
            mark = time.perf_counter()
            if attempt.workdir is not None:
                shutil.rmtree(attempt.workdir, ignore_errors=True)
            run.timings["cleanup"] = time.perf_counter() - mark
            run.seconds = time.perf_counter() - start
        level = logger.info if run.status == "ok" else logger.warning
        level("%s: %s in %.1f s%s", algorithm.name, run.status, run.seconds, f" - {run.message}" if run.message else "")
        return run

    def _stage(
        self,
        algorithm: Algorithm,
        exam: Exam | PartialExam,
        gpu: Gpu | None,
        weights: Path | None,
        run: AlgorithmRun,
        attempt: _Attempt,
    ) -> tuple[Contract, Staging]:
        """Copy the exam into a fresh temporary folder as the image expects it, and describe the container."""
        mark = time.perf_counter()
        contract = contract_for(algorithm)
        with _disk("copy the exam into a temporary folder", Path(tempfile.gettempdir()), _TEMP_HINT):
            attempt.workdir = make_workdir(algorithm.name)
            staging = contract.stage_with_weights(exam, attempt.workdir, weights)
            attempt.collected = attempt.workdir / "collected"  # btk's own copy of the result: the only thing read
            attempt.collected.mkdir()
            attempt.log = BoundedLog(attempt.workdir / "container.log")
        if algorithm.needs_root:
            _open_for_root(attempt.workdir, staging)
        attempt.spec = self.container_spec(algorithm, staging, gpu)
        run.timings["stage"] = time.perf_counter() - mark
        return contract, staging

    def _run_container(
        self, engine: Engine, algorithm: Algorithm, staging: Staging, run: AlgorithmRun, attempt: _Attempt
    ) -> None:
        """Run the container to its end (or its time limit); a :class:`ContainerError` unless it succeeded."""
        assert attempt.spec is not None and attempt.log is not None  # made by _stage
        timeout = self.timeout or algorithm.timeout_s
        try:
            attempt.outcome = outcome = engine.run(attempt.spec, timeout, attempt.log)
        finally:
            if algorithm.needs_root and self.user[0] != 0:  # whatever happened, no root-owned files stay
                engine.hand_back(algorithm.reference, staging.output, *self.user)
        run.timings["container"] = outcome.seconds
        if outcome.timed_out:
            run.status = "timeout"
            raise ContainerError(
                f"timed out after {timeout:g} s; the container was killed and removed",
                hint="raise the limit with --timeout, or check the log",
            )
        if outcome.exit_code != 0:
            raise ContainerError(
                f"the container exited with code {outcome.exit_code} "
                f"({_last_words(outcome.stderr_tail or outcome.log.last_text())})"
            )

    def _collect(
        self,
        algorithm: Algorithm,
        contract: Contract,
        staging: Staging,
        run: AlgorithmRun,
        attempt: _Attempt,
        deliver: Deliver,
    ) -> None:
        """Copy out the result the container wrote (btk's own copy), check it and write the output."""
        assert attempt.collected is not None  # made by _stage
        mark = time.perf_counter()
        target, message = deliver(algorithm, contract.find_result(staging, attempt.collected))
        run.timings["collect"] = time.perf_counter() - mark
        run.status, run.output, run.message = "ok", target, message


#: Checks a collected result and writes it where it belongs: (algorithm, result) -> (output file, message).
Deliver = Callable[[Algorithm, Path], tuple[Path, str]]


def _segmentation(reference: nib.Nifti1Image, output: Path, labels: LabelConvention) -> Deliver:
    """A segmentation checked, converted to ``labels`` and written as ``output/<algorithm>.nii.gz`` on the
    exam's grid."""

    def deliver(algorithm: Algorithm, result: Path) -> tuple[Path, str]:
        segmentation = checked_result(result, reference, algorithm, labels.name)
        target = output / f"{algorithm.name}.nii.gz"
        with _disk("write the segmentation", target, _OUTPUT_HINT, writing=True):
            save_label_map(segmentation, reference, target)
        return target, f"{int((segmentation > 0).sum())} tumour voxels"

    return deliver


@dataclass
class _Attempt:
    """What one algorithm's run has made so far, for its log and its clean-up."""

    workdir: Path | None = None
    collected: Path | None = None
    log: BoundedLog | None = None
    spec: ContainerSpec | None = None
    outcome: RunOutcome | None = None


_TEMP_HINT = "free space in the temporary folder, or set TMPDIR to a folder on a disk with room"
_OUTPUT_HINT = "free space on the disk of the output folder, then run the algorithms that failed again"


@contextlib.contextmanager
def _disk(action: str, path: Path, hint: str, *, writing: bool = False) -> Iterator[None]:
    """One :class:`BtkError` saying ``cannot {action}`` for ``path`` when the block fails on the disk.

    An ``OSError`` (a full disk, a quota) is turned into one; with ``writing``, so is the error of btk's
    atomic writers (which already say, e.g., that the disk is full), to name the file it was about.
    """
    try:
        yield
    except BtkError as error:  # before OSError: an OutputError is both
        if not writing:
            raise
        raise error.replace(problem=f"cannot {action}: {error.problem}", path=path, hint=error.hint or hint) from None
    except OSError as error:
        raise OutputError(
            f"cannot {action} ({error.strerror or error})", path=path, hint=hint, code=error.errno
        ) from None


def _run_in_lanes(
    algorithms: list[Algorithm],
    lanes: Mapping[str, Lane],
    gpus: list[Gpu],
    run_one: Callable[[Algorithm, Gpu | None], None],
    engine: Engine,
) -> None:
    """GPU algorithms in worker threads, one per GPU; CPU algorithms meanwhile, one after another, here.

    On Ctrl-C (or any error escaping ``run_one``) nothing more starts and the workers' containers are removed.
    """
    pool_of_gpus = GpuPool(gpus)
    interrupted = threading.Event()

    def on_a_gpu(algorithm: Algorithm) -> None:
        with pool_of_gpus.take(lanes[algorithm.name].gpus) as gpu:
            if not interrupted.is_set():
                run_one(algorithm, gpu)

    pool = ThreadPoolExecutor(max_workers=max(1, len(gpus)), thread_name_prefix="btk-gpu")
    try:
        futures = [pool.submit(on_a_gpu, a) for a in algorithms if lanes[a.name].on_gpu]
        for algorithm in algorithms:
            if not lanes[algorithm.name].on_gpu:
                run_one(algorithm, None)
        for future in futures:
            future.result()
    except BaseException:
        interrupted.set()
        pool.shutdown(wait=False, cancel_futures=True)
        engine.remove_running()
        raise
    finally:
        pool.shutdown(wait=True)


def _last_words(logs: str) -> str:
    """The line of a failed container's output that best says why: its last error line, else its last line."""
    lines = [_printable(line).strip() for line in logs.splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"error|exception|fatal", line, re.IGNORECASE)]
    return ((errors or lines)[-1:] or ["no output"])[0][:200]


def _printable(text: str) -> str:
    """``text`` without control characters (a container's output may hold terminal escape sequences)."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _device(gpu: Gpu | None) -> str:
    return f"GPU {gpu.index}" if gpu else "CPU"


def _one_line(error: BtkError) -> str:
    return str(error).replace("\n  -> ", "; ")


def _open_for_root(workdir: Path, staging: Staging) -> None:
    """Let a root container without capabilities read the staged inputs and write the output.

    The staging folder itself stays private (0700), so no other user of the machine gets in. Folders
    outside it (a user's weights) are left as they are.
    """
    for mount in staging.mounts:
        if not mount.source.is_relative_to(workdir):
            continue
        for path in [mount.source, *mount.source.rglob("*")]:
            path.chmod((0o777 if not mount.read_only else 0o755) if path.is_dir() else 0o644)
    workdir.chmod(0o700)


def _write_log(
    output: Path,
    algorithm: Algorithm,
    run: AlgorithmRun,
    spec: ContainerSpec | None = None,
    outcome: RunOutcome | None = None,
    log: BoundedLog | None = None,
) -> None:
    """``output/logs/<algorithm>.log``: how the container was run and ended, what it printed, btk's verdict.

    What it printed is the kept part of ``log``, also when the run was interrupted.

    A log that cannot be written (a full disk) is a warning: it never stops the run or the other algorithms.
    """
    lines = [f"# btk {__version__}: {algorithm.name} ({algorithm.reference})"]
    if spec is not None:
        lines += [
            f"# command: {' '.join(spec.command) if spec.command else '(image default)'}",
            f"# user: {spec.user}; gpus: {','.join(spec.gpus) or 'none'}; network: none",
            *(f"# mount: {m.target} ({'ro' if m.read_only else 'rw'})" for m in spec.mounts),
        ]
    if outcome is not None:
        ended = "killed (timeout)" if outcome.timed_out else f"exit code {outcome.exit_code}"
        lines.append(f"# {ended} after {outcome.seconds:.2f} s")
    if log is not None and spec is not None:
        lines.append("# the container's output follows")
    path = output / "logs" / f"{algorithm.name}.log"
    try:
        with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
            if log is not None and spec is not None:
                _copy_container_output(log, handle)
            handle.write(f"# btk: {run.status}" + (f": {run.message}" if run.message else "") + "\n")
    except (BtkError, OSError) as error:
        reason = error.strerror if isinstance(error, OSError) else error.problem
        logger.warning("%s: could not write its log %s (%s)", algorithm.name, path, reason)


def _copy_container_output(log: BoundedLog, handle: TextIO) -> None:
    """The kept part of a container's output, as text, ending with a line break."""
    if log.error:
        handle.write(f"[btk: not all of the container's output could be kept: {log.error}]\n")
    last = "\n"
    with contextlib.suppress(OSError), open(log.path, encoding="utf-8", errors="replace") as source:
        for block in iter(lambda: source.read(1 << 16), ""):
            handle.write(block)
            last = block[-1]
    if last != "\n":
        handle.write("\n")
