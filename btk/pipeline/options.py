"""The settings of a pipeline run and the inputs of one study task."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from btk.errors import InputError
from btk.fusion.names import method_name
from btk.fusion.parameters import SimpleParameters
from btk.labels import BRATS_2023, LabelConvention, get_convention, holding_convention, labels_advice
from btk.pipeline.discovery import Study
from btk.spaces import DEFAULT_SPACE, MODES, Space, get_space

#: Where the preprocessing may run (``auto``: a GPU when the worker has one).
DEVICES = ("auto", "cpu", "cuda")
#: The ``labels`` that let the algorithms decide: the convention that holds all their labels.
AUTO_LABELS = "auto"


@dataclass(frozen=True)
class PipelineOptions:
    """How every study of a run is processed; checked when made, so that a bad setting fails before any study starts.

    Args:
        output: The output folder; each study gets ``output/<study>/``.
        algorithms: Registered segmentation algorithms to run (Docker); may be empty when candidates are given.
        method: Fusion method (``mav``, ``simple``, ``staple``).
        simple: SIMPLE's parameters (with ``method="simple"`` only); None for the defaults.
        regions: Fuse the label convention's regions (WT, TC, ET for gliomas) rather than the labels.
        take: Region -> the candidates (algorithm or file names) it is taken from (one) or fused from
            (several), as ``btk fuse --take``; implies region-wise fusion.
        synthesise: A synthesis (missing-mri) algorithm that fills the one modality a study on the BraTS
            grid lacks, before the segmentation; the synthetic image is flagged in file names, provenance and
            report.
        labels: Label convention of every segmentation written (candidates are converted to it); ``"auto"``:
            the one that holds every algorithm's labels (:func:`btk.labels.holding_convention`), brats2023
            when there are none.
        device: Device of the preprocessing (``auto``, ``cpu``, ``cuda``).
        fast: Fast brain extraction (HD-BET without test-time augmentation).
        atlas: The space the studies are preprocessed to (:mod:`btk.spaces`); None: the one the algorithms
            expect (they must agree), else ``brats-sri24``. Set to the space it resolved to.
        mode: What the preprocessing does with the skull (``skullstrip``, ``deface``); None: what the
            algorithms' tracks expect (they must agree: deface for pediatric and meningioma-rt), else the
            space's default. Set to the mode it resolved to.
        cpu: Run segmentation containers without a GPU.
        gpus: GPU indices the segmentation may use (default: all).
        registry: Extra algorithm registry files, on top of the shipped registry.
        force: Redo every stage, even finished ones.
        pdf: Print each exam's report to ``report.pdf`` with headless Chromium (skipped with a warning when
            there is none).

    Raises:
        BtkError: For an unknown fusion method (or SIMPLE parameters for another method), label convention,
            device or algorithm, malformed GPU indices, a registry file that cannot be read, or algorithms that
            expect different atlas spaces (or another one than ``atlas``).
    """

    output: Path
    algorithms: tuple[str, ...] = ()
    method: str = "simple"
    simple: SimpleParameters | None = None
    regions: bool = False
    take: dict[str, tuple[str, ...]] = field(default_factory=dict)
    synthesise: str | None = None
    labels: str = AUTO_LABELS
    device: str = "auto"
    fast: bool = False
    atlas: str | None = None
    mode: str | None = None
    cpu: bool = False
    gpus: tuple[str, ...] | None = None
    registry: tuple[Path, ...] = ()
    force: bool = False
    pdf: bool = True

    def __post_init__(self) -> None:
        method_name(self.method)
        if self.simple is not None:
            from btk.fusion.methods import fusion_method  # numpy: only when there is something to check

            fusion_method(self.method, parameters=self.simple)
        if self.device.lower() not in DEVICES:
            raise InputError(f"unknown device {self.device!r}", hint=f"use one of {', '.join(DEVICES)}")
        if self.gpus is not None and not all(str(gpu).isdigit() for gpu in self.gpus):
            raise InputError(f"GPU indices are whole numbers, got {', '.join(map(repr, self.gpus))}")
        declared, declared_mode = self._check_algorithms() if self.algorithms else ({}, None)
        if not self.algorithms:
            object.__setattr__(self, "atlas", get_space(self.atlas or DEFAULT_SPACE).name)
        object.__setattr__(self, "mode", self.mode or declared_mode or self.space.default_mode)
        if self.mode not in MODES:
            raise InputError(f"unknown mode {self.mode!r}", hint=f"use one of {', '.join(MODES)}")
        if self.synthesise:
            self._check_synthesis()
        if self.labels == AUTO_LABELS:
            chosen = holding_convention(list(declared.values())) if declared else BRATS_2023
            object.__setattr__(self, "labels", chosen.name)
        convention = get_convention(self.labels)
        for region in self.take:
            convention.region(region)  # the candidates' names are checked when a study is fused
        misfits = {name: convention.classes_missing_for(c) for name, c in declared.items()}
        misfits = {name: missing for name, missing in misfits.items() if missing}
        if misfits:
            raise InputError(
                f"the segmentations cannot be written in the {convention.name} convention: "
                + "; ".join(f"{name} writes {', '.join(missing)}" for name, missing in misfits.items()),
                hint=labels_advice(list(declared.values())),
            )

    def _check_synthesis(self) -> None:
        """The synthesis algorithm must be a registered synthesis (missing-mri) image."""
        from btk.segment.registry import load_registry

        entry = load_registry(list(self.registry) or None).get(str(self.synthesise))
        if entry.output != "image":
            raise InputError(
                f"{entry.name} segments; it does not synthesise a missing modality",
                hint="choose a missing-mri algorithm: btk algorithms list --track missing-mri",
            )
        if entry.atlas_space != self.space.name:
            raise InputError(
                f"{entry.name} synthesises in the {entry.atlas_space} space, but the run works in {self.space.name}",
                hint="choose a synthesis and segmentation algorithms of one atlas space",
            )

    def _check_algorithms(self) -> tuple[dict[str, LabelConvention], str | None]:
        """Each algorithm's own label convention, and the preprocessing mode they expect; every algorithm must
        be in the registry the studies' segmentation will load (shipped + extra files), and all must expect
        one atlas space (``atlas``, when it is given; it is set to theirs otherwise) and one mode."""
        from btk.segment.additional_files import require_cached
        from btk.segment.registry import common_mode, common_space, load_registry  # pydantic: when algorithms run

        registry = load_registry(list(self.registry) or None)
        entries = [registry.get(name) for name in self.algorithms]
        wanted = common_space(entries) or DEFAULT_SPACE
        if self.atlas is not None and get_space(self.atlas).name != wanted:
            raise InputError(
                f"--atlas {self.atlas} was asked for, but {', '.join(self.algorithms)} expect the {wanted} space",
                hint=f"leave out --atlas (the studies are then preprocessed to {wanted}) or choose algorithms of "
                f"the {self.atlas} space",
            )
        object.__setattr__(self, "atlas", wanted)
        for entry in entries:
            if entry.additional_files is not None:
                require_cached(entry)  # before any study starts, not in every study's segmentation
        conventions = {a.name: get_convention(a.labels) for a in entries if a.labels}
        return conventions, common_mode(entries)

    @property
    def space(self) -> Space:
        """The space the studies are preprocessed to and the algorithms expect."""
        return get_space(self.atlas or DEFAULT_SPACE)

    @property
    def uses_gpu(self) -> bool:
        """Whether a study may hold a GPU (preprocessing or containers not restricted to the CPU)."""
        return self.device != "cpu" or (bool(self.algorithms or self.synthesise) and not self.cpu)


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
