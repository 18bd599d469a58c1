"""Input/output contracts: how an image expects its inputs and where it leaves its result.

Each contract stages the exam into a fresh private folder with the file names and mount points its
images expect, names the command to run, and finds the result afterwards. Inputs are always mounted
read-only; the image writes into a separate, empty output folder. A user's weights folder, when given, is
bound read-only where the image reads weights (the entry's ``weights_mount``; ``/mlcube_io1`` for MLCube).

Only the modalities an entry lists are staged. The BraTS 2023+ contracts name the case by the entry's
``case`` or ``case_schema`` (for a time point, pre or post treatment) and the files ``<case><separator><modality>``.
"""

from __future__ import annotations

import fnmatch
import gzip
import json
import math
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np

from btk.console import logger
from btk.errors import ContainerError, InputError
from btk.io import is_nifti, open_nifti
from btk.modalities import FILE_SUFFIXES, canonical
from btk.segment.collect import FOLDER, copy_out, list_output
from btk.segment.exam import Exam, PartialExam
from btk.segment.registry import (
    LEGACY_NAMING,
    Algorithm,
    Brats2025ContractSpec,
    BratsCaseSpec,
    LegacyContractSpec,
    MlcubeContractSpec,
)


@dataclass(frozen=True)
class Mount:
    """A host folder bound into the container."""

    source: Path
    target: str
    read_only: bool


@dataclass(frozen=True)
class Staging:
    """A staged run: the mounts, the command (None: the image's default) and the host output folder."""

    mounts: tuple[Mount, ...]
    command: tuple[str, ...] | None
    output: Path


class Contract(ABC):
    """Stages inputs for, and collects the result of, one family of images."""

    kind: ClassVar[str]
    #: Several files matching a result pattern: refused (False) or resolved by BraTS Toolkit's rule, the file
    #: with most labels, with a warning (True; the legacy images, some of which write several).
    picks_most_labels: ClassVar[bool] = False

    def __init__(self, algorithm: Algorithm, timepoint: str | None = None):
        self.algorithm = algorithm
        self.spec = algorithm.contract
        self.timepoint = timepoint

    @property
    def inputs_read_only(self) -> bool:
        """Whether the staged inputs are mounted read-only: unless the entry says the image writes into
        them (``writable_inputs``); either way they are btk's private copy, never the user's files."""
        return not self.algorithm.writable_inputs

    def inputs(self, exam: Exam | PartialExam) -> dict[str, Path]:
        """The exam's files the image reads: the entry's ``modalities``, in BraTS order."""
        return {modality: path for modality, path in exam.files().items() if modality in self.algorithm.modalities}

    @abstractmethod
    def stage(self, exam: Exam | PartialExam, root: Path) -> Staging:
        """Write the exam's inputs below ``root`` (a fresh, private folder) and describe the run."""

    def weights_target(self) -> str | None:
        """Where the image reads a weights folder; None if it takes none."""
        return self.algorithm.weights_mount

    def stage_with_weights(self, exam: Exam | PartialExam, root: Path, weights: Path | None) -> Staging:
        """:meth:`stage`, plus the user's ``weights`` folder (if any) bound read-only at :meth:`weights_target`."""
        staging = self.stage(exam, root)
        if weights is None:
            return staging
        target = self.weights_target()
        if target is None:
            raise InputError(
                f"{self.algorithm.name} takes no weights folder (its registry entry has no weights_mount)",
                path=weights,
                hint="drop --weights for this algorithm, or add weights_mount to its entry",
            )
        kept = tuple(m for m in staging.mounts if m.target != target)
        return replace(staging, mounts=(*kept, Mount(weights.resolve(), target, True)))

    @abstractmethod
    def result_patterns(self) -> tuple[str, ...]:
        """Glob patterns for the result in the output folder, most specific first."""

    def find_result(self, staging: Staging, into: Path) -> Path:
        """The one segmentation the image wrote, copied into btk's own folder ``into``.

        A :class:`BtkError` if there is none, if it is ambiguous, or if it is a link or a special file (never
        followed nor opened: see :mod:`btk.segment.collect`).
        """
        entries = list_output(staging.output)
        candidates = [e for e in entries if "/" not in e.path and e.kind != FOLDER and is_nifti(e.path)]
        for pattern in self.result_patterns():
            matches = [e for e in candidates if fnmatch.fnmatchcase(e.path, pattern)]
            if len(matches) == 1:
                return copy_out(staging.output, matches[0], into)
            if len(matches) > 1 and self.picks_most_labels:
                return _most_labels([copy_out(staging.output, e, into) for e in matches], self.algorithm.name)
            if len(matches) > 1:
                raise ContainerError(
                    f"the image wrote several candidate results ({', '.join(e.describe() for e in matches)})",
                    hint="the registry entry's contract does not match what the image writes",
                )
        written = [e.describe() for e in entries]
        raise ContainerError(
            "the container finished but wrote no segmentation"
            + (f" (it wrote: {', '.join(written[:8])})" if written else " (its output folder is empty)"),
            hint="see the algorithm's log; the image may have failed without a non-zero exit code",
        )


class LegacyContract(Contract):
    """BraTS 2017-2020 algorithmic repository (BraTS Toolkit): ``<mount>/<names>`` in, ``<mount>/results/`` out."""

    kind = "brats-legacy"
    picks_most_labels = True

    spec: LegacyContractSpec

    def stage(self, exam: Exam | PartialExam, root: Path) -> Staging:
        data, output = _folders(root, "data", "output")
        (data / "results").mkdir()  # mount point of the output folder inside the read-only data folder
        inputs = self.inputs(exam)
        for modality, name in LEGACY_NAMING[self.spec.naming].items():
            if modality in inputs:
                place(inputs[modality], data / name)
        mount = self.spec.mount.rstrip("/") or "/"
        return Staging(
            mounts=(
                Mount(data, mount, self.inputs_read_only),
                Mount(output, f"{mount.rstrip('/')}/results", False),
            ),
            command=_command(self.algorithm.command),
            output=output,
        )

    def result_patterns(self) -> tuple[str, ...]:
        name = self.algorithm.name
        return (f"tumor_{name}_class.nii*", "tumor_*_class.nii*", f"{name}*.nii*", "*tumor*.nii*", "*.nii*")


class MlcubeContract(Contract):
    """BraTS 2023-2024 MLCube images: ``/mlcube_io0`` data, ``io1`` weights, ``io2`` output, ``io3`` parameters."""

    kind = "mlcube"

    spec: MlcubeContractSpec

    @property
    def case(self) -> str:
        """The case staged: the entry's ``case``, or its ``case_schema`` at the run's time point."""
        return _case_of(self)

    def stage(self, exam: Exam | PartialExam, root: Path) -> Staging:
        data, weights, output, parameters = _folders(root, "data", "weights", "output", "parameters")
        _stage_brats_case(self.inputs(exam), data, self.case, self.spec.separator)
        command = [*(self.algorithm.command or ["infer"]), "--data_path=/mlcube_io0", "--output_path=/mlcube_io2"]
        extra = self.algorithm.additional_files
        for option, path in (extra.arguments if extra else {}).items():
            command.append(f"--{option}=/mlcube_io1" + (f"/{path.strip('/')}" if path.strip("/") else ""))
        if self.spec.parameters_file:
            name = self.spec.parameters_name
            (parameters / name).write_text(yaml_text(self.spec.parameters or {}), encoding="utf-8")
            command.append(f"--parameters_file=/mlcube_io3/{name}")
        return Staging(
            mounts=(
                Mount(data, "/mlcube_io0", self.inputs_read_only),
                Mount(weights, "/mlcube_io1", True),
                Mount(output, "/mlcube_io2", False),
                Mount(parameters, "/mlcube_io3", True),
            ),
            command=tuple(command),
            output=output,
        )

    def result_patterns(self) -> tuple[str, ...]:
        return (f"{self.case}.nii.gz", f"{self.case}*.nii*", "*.nii*")

    def weights_target(self) -> str | None:
        return self.algorithm.weights_mount or "/mlcube_io1"


class Brats2025Contract(Contract):
    """BraTS 2025 images and btk's U-Net: ``/input/<case>/<case>-t1c.nii.gz`` ... in, ``/output/<case>.nii.gz``."""

    kind = "brats2025"

    spec: Brats2025ContractSpec

    @property
    def case(self) -> str:
        """The case staged: the entry's ``case``, or its ``case_schema`` at the run's time point."""
        return _case_of(self)

    def stage(self, exam: Exam | PartialExam, root: Path) -> Staging:
        data, output = _folders(root, "input", "output")
        _stage_brats_case(self.inputs(exam), data, self.case, self.spec.separator)
        return Staging(
            mounts=(Mount(data, "/input", self.inputs_read_only), Mount(output, "/output", False)),
            command=_command(self.algorithm.command),
            output=output,
        )

    def result_patterns(self) -> tuple[str, ...]:
        return (f"{self.case}.nii.gz", f"{self.case}*.nii*", "*.nii*")


def contract_for(algorithm: Algorithm, timepoint: str | None = None) -> Contract:
    """The contract object an entry's ``contract`` field describes; ``timepoint``: pre or post treatment."""
    kinds: dict[str, type[Contract]] = {c.kind: c for c in (LegacyContract, MlcubeContract, Brats2025Contract)}
    contract = kinds[algorithm.contract.kind](algorithm, timepoint)
    if isinstance(contract.spec, BratsCaseSpec):
        _case_of(contract)  # an unknown time point is an error now, not when staging
    elif timepoint is not None:
        raise InputError(f"{algorithm.name} knows no time points", hint="leave out the time point")
    return contract


def _case_of(contract: Contract) -> str:
    spec = contract.spec
    assert isinstance(spec, BratsCaseSpec)
    try:
        return spec.case_name(contract.timepoint)
    except ValueError as error:
        raise InputError(f"{contract.algorithm.name}: {error}", hint="choose a time point the entry lists") from None


def yaml_text(values: Mapping[str, object]) -> str:
    """``values`` as YAML that every YAML reader parses back to them: JSON, floats always with a dot.

    (YAML 1.1 readers such as PyYAML read ``1e-05`` as a string, ``1.0e-05`` as a number.)
    """
    return _yaml_value(values) + "\n"


def _yaml_value(value: object) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_yaml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    if isinstance(value, float) and not isinstance(value, bool):
        if not math.isfinite(value):
            return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
        text = repr(value)
        mantissa, _, exponent = text.partition("e")
        if "." not in mantissa:
            mantissa += ".0"
        if exponent and exponent[0] not in "+-":
            exponent = "+" + exponent
        return mantissa + (f"e{exponent}" if exponent else "")
    return json.dumps(value)


def _most_labels(results: list[Path], name: str) -> Path:
    """Of several result files (btk's copies), the one with most distinct labels, the first by name on a tie
    (BraTS Toolkit's rule), with a warning naming them all."""
    counts = {}
    for path in sorted(results):
        try:
            counts[path] = len(np.unique(np.asanyarray(open_nifti(path).dataobj)))
        except Exception:  # an unreadable candidate counts as none; the chosen one is checked later anyway
            counts[path] = 0
    chosen = max(counts, key=lambda p: counts[p])
    logger.warning(
        "%s wrote several results (%s); using %s, the one with most labels (BraTS Toolkit's rule)",
        name,
        ", ".join(f"{p.name}: {n} labels" for p, n in counts.items()),
        chosen.name,
    )
    return chosen


def place(source: Path, target: Path) -> None:
    """Copy a NIfTI file under a new name, (de)compressing when the suffixes differ.

    A copy, never a link: nothing a container does can reach the user's original files.
    """
    source_gz, target_gz = source.name.lower().endswith(".gz"), target.name.lower().endswith(".gz")
    if source_gz == target_gz:
        shutil.copyfile(source, target)
    elif source_gz:
        with gzip.open(source, "rb") as reader, open(target, "wb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)
    else:
        with open(source, "rb") as reader, gzip.open(target, "wb", compresslevel=1) as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)


def _stage_brats_case(inputs: dict[str, Path], data: Path, case: str, separator: str) -> None:
    folder = data / case
    folder.mkdir()
    for short_name, path in inputs.items():
        place(path, folder / f"{case}{separator}{FILE_SUFFIXES['2023'][canonical(short_name)]}.nii.gz")


def _folders(root: Path, *names: str) -> list[Path]:
    folders = [root / name for name in names]
    for folder in folders:
        folder.mkdir()
    return folders


def _command(command: list[str] | None) -> tuple[str, ...] | None:
    return tuple(command) if command else None
