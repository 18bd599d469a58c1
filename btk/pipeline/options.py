"""The settings of a pipeline run and the inputs of one study task."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from btk.pipeline.discovery import Study


@dataclass(frozen=True)
class PipelineOptions:
    """How every study of a run is processed.

    Args:
        output: The output folder; each study gets ``output/<study>/``.
        algorithms: Registered segmentation algorithms to run (Docker); may be empty when candidates are given.
        method: Fusion method (``mav``, ``simple``, ``staple``).
        regions: Fuse the regions WT, TC, ET rather than the labels.
        labels: Label convention of every segmentation written (candidates are converted to it).
        device: Device of the preprocessing (``auto``, ``cpu``, ``cuda``).
        fast: Fast brain extraction (HD-BET without test-time augmentation).
        cpu: Run segmentation containers without a GPU.
        gpus: GPU indices the segmentation may use (default: all).
        registry: Extra algorithm registry files, on top of the shipped registry.
        force: Redo every stage, even finished ones.
    """

    output: Path
    algorithms: tuple[str, ...] = ()
    method: str = "simple"
    regions: bool = False
    labels: str = "brats2023"
    device: str = "auto"
    fast: bool = False
    cpu: bool = False
    gpus: tuple[str, ...] | None = None
    registry: tuple[Path, ...] = ()
    force: bool = False

    @property
    def uses_gpu(self) -> bool:
        """Whether a study may hold a GPU (preprocessing or containers not restricted to the CPU)."""
        return self.device != "cpu" or (bool(self.algorithms) and not self.cpu)


@dataclass(frozen=True)
class StudyTask:
    """One study with the inputs found for it: candidate segmentations and a reference, if any."""

    study: Study
    candidates: tuple[Path, ...] = ()
    candidates_source: Path | None = None
    reference: Path | None = None

    @property
    def name(self) -> str:
        return self.study.name
