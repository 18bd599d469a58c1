"""The stages one study goes through, each writing into its own fresh folder.

A stage gets the study's context (its task, the options and the outputs of the stages before it) and a
new, empty folder to write into; it returns its outputs (name -> file in that folder) and details for
the provenance. :mod:`btk.pipeline.study` moves the folder into place and marks the stage complete.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from btk.console import logger
from btk.errors import BtkError, ContainerError, InputError, MissingExtraError
from btk.io import load_label_map, save_label_map, sha256, strip_nifti_suffix
from btk.labels import convert, get_convention, read_in
from btk.modalities import DISPLAY_NAMES, MODALITIES, SHORT_NAMES, canonical, short_names
from btk.pipeline.options import PipelineOptions, StudyTask
from btk.spaces import AtlasSpace, Grid, Space, get_space, space_of_grid

if TYPE_CHECKING:
    import numpy as np

    from btk.clinical import ClinicalFindings
    from btk.report.data import AgreementRecord, AlgorithmRunRecord, CandidateRecord, ExamReportData

StageResult = tuple[dict[str, Path], dict]


@dataclass
class StudyContext:
    """What a stage knows: the task, the options, the study's folder and earlier stages' results."""

    task: StudyTask
    options: PipelineOptions
    folder: Path
    outputs: dict[str, dict[str, Path]] = field(default_factory=dict)
    details: dict[str, dict] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.task.name

    def preprocessed_folder(self) -> Path | None:
        """The btk-preprocessed exam folder, if the study has one (not for inputs already in an atlas space)."""
        if self.task.study.kind == "preprocessed":
            return self.task.study.source
        if "preprocess" in self.outputs:
            return self.folder / "preprocess"
        return None

    def space(self) -> Space:
        """The atlas space of the study's images: found at discovery (``brats``, ``preprocessed``), else the
        run's (the space the study is preprocessed to)."""
        return get_space(self.task.study.space or self.options.space.name)

    def grid(self) -> Grid:
        """The grid the study's images lie on: its atlas space's, or in a native space the reference image's own."""
        space = self.space()
        if isinstance(space, AtlasSpace):
            return space.grid
        from btk.io import open_nifti

        image = open_nifti(self.brats_images()[space.reference])
        return Grid((int(image.shape[0]), int(image.shape[1]), int(image.shape[2])), image.affine)

    def brats_images(self) -> dict[str, Path]:
        """The modalities on the study's grid: modality (``t1n``, ``t1c``, ``t2w``, ``t2f``) -> image (the four in
        an atlas space, the synthesised one among them for a study that lacked it; the T1c alone in native-t1c)."""
        if "synthesise" in self.outputs:
            return {m: self.outputs["synthesise"][m] for m in MODALITIES}
        if self.task.study.kind in ("brats", "preprocessed"):  # found on an atlas grid at discovery
            return {m: Path(p) for m, p in self.task.study.modalities.items()}
        from btk.preprocess import PreprocessedExam

        return PreprocessedExam.load(self.folder / "preprocess").images("brats")

    def candidates(self) -> dict[str, Path]:
        """The candidate segmentations gathered by the segment stage."""
        return dict(self.outputs["segment"])

    def fused(self) -> Path:
        return self.outputs["fuse"]["fused"]


@dataclass(frozen=True)
class Stage:
    """A named step, when it applies to a study, and what it does."""

    name: str
    description: str
    applies: Callable[[StudyTask], bool]
    run: Callable[[StudyContext, Path], StageResult]


def convert_stage(context: StudyContext, folder: Path) -> StageResult:
    """DICOM study -> one NIfTI image per modality (dcm2niix, through the Preprocessor's converter)."""
    from btk.preprocess import convert_dicom

    staging = folder.parent / f"{folder.name}-dicom"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for index, file in enumerate(context.task.study.files):
        os.symlink(file.resolve(), staging / f"{index:06d}.dcm")  # file names may identify the patient
    try:
        conversion = convert_dicom(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    needed = context.options.space.modalities
    images = {m: Path(p) for m, p in conversion.modalities.items() if m in MODALITIES}
    missing = [m for m in needed if m not in images]
    if missing:
        found = ", ".join(f"{s['description']!r} -> {s['modality'] or 'not used'}" for s in conversion.summary())
        notes = "".join(f"; {note}" for note in conversion.notes)
        raise InputError(
            f"missing modality: no {short_names(missing)} series among the study's series ({found}){notes}",
            path=context.task.study.source,
            hint=f"each study needs {_listing([DISPLAY_NAMES[m] for m in needed])} series",
        )
    return images, {"dicom_files": len(context.task.study.files), "series": conversion.summary()}


def preprocess_stage(context: StudyContext, folder: Path) -> StageResult:
    """Co-registration, registration to the run's atlas space and brain extraction (the Preprocessor)."""
    from btk.preprocess import Preprocessor

    study = context.task.study
    converted = context.outputs.get("convert")  # DICOM: the converted images, named explicitly
    source = Path(next(iter(converted.values()))).parent if converted else study.source
    options = context.options
    exam = Preprocessor(device=options.device, fast=options.fast, mode=options.mode, atlas=options.space.name).run(
        source, folder, modalities=dict(converted) if converted else None, case_id=context.name
    )
    return {role: Path(path) for role, path in exam.outputs.items()}, {"source": str(study.source)}


def synthesise_stage(context: StudyContext, folder: Path) -> StageResult:
    """The modality the study lacks, made by a synthesis (BraSyn) image from the other three."""
    from btk.segment import PartialExam, Segmentor
    from btk.segment.synthesis import SYNTHESIS_RECORD

    options, study = context.options, context.task.study
    exam = PartialExam({SHORT_NAMES[m]: Path(p) for m, p in study.modalities.items()}, context.name)
    segmentor = Segmentor(list(options.registry) or None, cpu=options.cpu, gpus=options.gpus)
    report = segmentor.synthesise(exam, str(options.synthesise), folder / "exam")
    images = {canonical(m): p for m, p in report.inputs.items()} | {canonical(report.modality): report.image}
    return {**images, "record": report.folder / SYNTHESIS_RECORD}, {
        "algorithm": report.algorithm,
        "modality": canonical(report.modality),
        "label": report.label,
        "image": report.reference,
    }


def segment_stage(context: StudyContext, folder: Path) -> StageResult:
    """Gather the candidate segmentations: imported ones (``--candidates``) and those of the algorithms."""
    labels = get_convention(context.options.labels)
    images = context.brats_images()
    space, grid = context.space(), context.grid()
    candidates: dict[str, Path] = {}
    provenance = []
    for path in context.task.candidates:
        name = strip_nifti_suffix(path)
        target = folder / f"{name}.nii.gz"
        image, data = load_label_map(path)
        if data.ndim != 3 or not grid.holds(data.shape, image.affine, tolerance_mm=1e-2):
            where = "atlas space" if isinstance(space, AtlasSpace) else f"space ({space.describe_grid()})"
            raise InputError(
                f"the candidate segmentation is not on the grid of the study's {where}, {space.name} "
                f"({grid.describe()}): {_grid_found(data.shape, image.affine)}",
                path=path,
                hint=f"candidates must lie in the {space.name} space, like the study's images and the algorithms' "
                "outputs",
            )
        source_labels = read_in(labels, data)
        try:
            save_label_map(convert(data, source_labels, labels), image, target)
        except BtkError as error:
            raise error.replace(path=path, hint=f"pass --labels {source_labels.name} to keep its labels") from None
        candidates[name] = target
        provenance.append(
            {
                "name": name,
                "origin": "imported",
                "source": str(Path(path).resolve()),
                "sha256": sha256(path),
                "labels": f"{source_labels.name} -> {labels.name}",
            }
        )
    runs = []
    if context.options.algorithms:
        runs = _run_algorithms(context, images, folder / "algorithms", candidates, provenance)
    if not candidates and not runs:
        raise InputError(
            "no candidate segmentations for this study",
            path=context.task.candidates_source,
            hint=f"put them in a sub-folder of the candidates folder named {context.name}",
        )
    if not candidates:
        failures = "; ".join(f"{r['algorithm']}: {r['status']} ({r['message']})" for r in runs)
        raise ContainerError(
            f"no candidate segmentation: every algorithm failed ({failures})",
            hint=f"see the logs in {folder / 'algorithms' / 'logs'}, or bring segmentations with --candidates",
        )
    return candidates, {
        "candidates": provenance,
        "algorithm_runs": runs,
        "candidates_source": str(context.task.candidates_source or ""),
    }


def _run_algorithms(
    context: StudyContext, images: dict[str, Path], folder: Path, candidates: dict[str, Path], provenance: list[dict]
) -> list[dict]:
    from btk.segment import Exam, PartialExam, Segmentor

    options = context.options
    segmentor = Segmentor(list(options.registry) or None, cpu=options.cpu, gpus=options.gpus, labels=options.labels)
    exam = (
        Exam.from_files(images["t1n"], images["t1c"], images["t2w"], images["t2f"])
        if set(images) == set(MODALITIES)
        else PartialExam({SHORT_NAMES[m]: Path(p) for m, p in images.items()}, context.name)  # native-t1c: T1c
    )
    report = segmentor.run(exam, algorithms=list(options.algorithms), output=folder)
    runs = report.to_dict()["runs"]
    for name, path in report.outputs.items():
        key = name if name not in candidates else f"{name}-run"
        candidates[key] = Path(path)
        provenance.append(
            {
                "name": key,
                "origin": "algorithm",
                "source": f"btk segment -a {name}",
                "sha256": sha256(path),
                "labels": options.labels,
            }
        )
    return runs


def fuse_stage(context: StudyContext, folder: Path) -> StageResult:
    """The consensus of the candidates (the Fusionator), with each candidate's agreement."""
    from btk.fusion import Fusionator, sidecar_paths

    candidates = context.candidates()
    output = folder / f"{context.name}_fused.nii.gz"
    if len(candidates) == 1:
        ((name, path),) = candidates.items()
        others = sorted({n for names in context.options.take.values() for n in names} - {name})
        if others:
            raise InputError(
                f"--take names {', '.join(others)}, but this study's only candidate is {name}",
                hint="name candidates as they are called, or drop --take",
            )
        shutil.copyfile(path, output)
        return {"fused": output}, {"method": "none (a single candidate)", "candidate": name}
    options = context.options
    result = Fusionator(labels=options.labels).fuse(
        list(candidates.values()),
        method=options.method,
        regions=options.regions,
        names=list(candidates),
        case=context.name,
        parameters=options.simple,
        take=options.take,
    )
    result.save(output)
    sidecar, agreement = sidecar_paths(output)
    return {"fused": output, "sidecar": sidecar, "agreement": agreement}, {
        "method": options.method,
        "mode": "regions" if result.regions else "labels",
        "flavour": result.flavour,
        "sources": result.sources,
    }


def native_stage(context: StudyContext, folder: Path) -> StageResult:
    """The fused segmentation mapped back to the native space of the T1c image."""
    from btk.preprocess import to_native

    output = folder / f"{context.name}_fused_native.nii.gz"
    exam = context.preprocessed_folder()
    assert exam is not None, "the native stage applies only to studies that have or get a preprocessed exam"
    to_native(context.fused(), exam, output)
    return {"native": output}, {}


#: Why a study of each kind without DICOM source gets no DICOM SEG (shown in its report).
NO_DICOM_SOURCE = {
    "nifti": "the exam came from NIfTI: no source DICOM series to reference",
    "brats": "the exam came from NIfTI: no source DICOM series to reference",
    "preprocessed": "the exam came preprocessed (btk preprocess): no source DICOM series to reference",
}


def dicom_stage(context: StudyContext, folder: Path) -> StageResult:
    """The native-space consensus as a DICOM SEG of the exam's T1 series, for the PACS (``dicom/seg.dcm``).

    A SEG that cannot be made (the series does not match the native grid, highdicom missing) does not fail the
    study: the stage records why, and the report says so.
    """
    from btk.pipeline.dicom import series_numbered
    from btk.preprocess.dicom_seg import write_dicom_seg
    from btk.report.colours import label_colours

    converted_t1 = context.outputs["convert"]["t1n"].name
    number = next(s["series_number"] for s in context.details["convert"]["series"] if s["file"] == converted_t1)
    output = folder / "seg.dcm"
    labels = get_convention(context.options.labels)
    problem: BtkError = InputError(f"no DICOM series numbered {number} among the study's files")
    for files in series_numbered(context.task.study.files, number):
        try:
            result = write_dicom_seg(
                context.outputs["native"]["native"],
                files,
                output,
                labels,
                label_colours(labels),
                description=f"btk consensus ({context.options.method}, {labels.name})",
            )
        except (InputError, MissingExtraError) as error:  # another series of that number, or no highdicom
            problem = error
            continue
        return {"seg": output}, {"series_number": number, "source_images": result.source_images}
    logger.warning("%s: no DICOM SEG: %s", context.name, problem)
    return {}, {"series_number": number, "reason": problem.problem}


def evaluate_stage(context: StudyContext, folder: Path) -> StageResult:
    """Dice, HD95 and volumes of the fused segmentation against the reference."""
    from btk.evaluation import evaluate_case, write_csv

    reference = context.task.reference
    assert reference is not None, "the evaluate stage applies only to studies with a reference"
    labels = get_convention(context.options.labels)
    _, reference_map = load_label_map(reference)
    rows = evaluate_case(context.fused(), reference, context.name, labels, read_in(labels, reference_map))
    output = folder / "evaluation.csv"
    write_csv(rows, output)
    return {"evaluation": output}, {"reference": str(reference), "dice": {row.region: row.dice for row in rows}}


def report_stage(context: StudyContext, folder: Path) -> StageResult:
    """Clinical measures, figures, volumes, colour tables and the HTML report of the study, from the facts the
    stages gathered (the PDF is printed with the batch's summary, once the page holds the cohort's alarms)."""
    from btk.clinical import write_clinical_files
    from btk.report.exam import ReportImages, write_exam_report

    findings = clinical_findings(context)
    clinical_files = write_clinical_files(findings, folder)
    images = context.brats_images()
    written = write_exam_report(
        exam_report_data(context, findings.to_dict()),
        ReportImages(context.fused(), images["t1c"], images.get("t2f")),
        folder,
    )
    return {**written, **clinical_files}, {}


def clinical_findings(context: StudyContext) -> ClinicalFindings:
    """The clinical measures of the fused segmentation (with native-space volumes when there is a native map)."""
    from btk.clinical import measure_exam

    fused_image, fused = load_label_map(context.fused())
    native_path = context.outputs.get("native", {}).get("native")
    native = None
    if native_path is not None:
        native_image, native_map = load_label_map(native_path)
        native = (native_map, native_image.affine)
    return measure_exam(fused, fused_image.affine, context.options.labels, native)


def exam_report_data(context: StudyContext, clinical: dict | None = None) -> ExamReportData:
    """What the report of a study shows, from its stages' outputs and details (links relative to ``report/``).

    ``clinical``: the clinical measures (``ClinicalFindings.to_dict()``), if measured.
    """
    from btk.report import data as report
    from btk.report.citations import citations
    from btk.report.exam import region_volumes_ml

    study, options, details = context.task.study, context.options, context.details
    segment, fuse, evaluate = details.get("segment", {}), details.get("fuse", {}), details.get("evaluate")
    synthesis = details.get("synthesise")
    synthesised = [synthesis["algorithm"]] if synthesis else []
    fused_image, fused = load_label_map(context.fused())
    final = context.folder / "report"  # where this stage's folder ends up

    def relative(stage: str, name: str) -> str | None:
        path = context.outputs.get(stage, {}).get(name)
        return None if path is None else os.path.relpath(path, final)

    return report.ExamReportData(
        study=context.name,
        kind=study.kind,
        source=str(study.source),
        labels=options.labels,
        volumes_ml=region_volumes_ml(fused, tuple(float(z) for z in fused_image.header.get_zooms()), options.labels),
        fusion=report.FusionRecord(
            str(fuse.get("method", "")), fuse.get("mode", ""), fuse.get("flavour", ""), fuse.get("sources", {})
        ),
        candidates=_candidate_records(segment),
        files=report.ReportFiles(
            relative("fuse", "fused") or "", relative("native", "native"), relative("evaluate", "evaluation")
        ),
        candidates_source=segment.get("candidates_source", ""),
        algorithm_runs=_algorithm_run_records(segment),
        agreement=_agreement_record(context.outputs["fuse"].get("agreement")),
        evaluation=report.EvaluationRecord(evaluate["reference"], evaluate["dice"]) if evaluate else None,
        stages={
            stage: report.StageRecord(float(d.get("seconds", 0.0)), d.get("source") or d.get("reference") or "")
            for stage, d in details.items()
        },
        preprocessed=str(context.preprocessed_folder() or ""),
        citations=tuple(
            citations(
                [*details, "report", *(["clinical"] if clinical else [])],
                options.method,
                {name: algorithm_citation(name) for name in [*context.candidates(), *synthesised]},
            )
        ),
        synthetic=report.SyntheticRecord(synthesis["modality"], synthesis["algorithm"]) if synthesis else None,
        dicom_seg=report.DicomSegRecord(
            relative("dicom", "seg"),
            details.get("dicom", {}).get("reason", "") or NO_DICOM_SOURCE.get(study.kind, ""),
        ),
        clinical=clinical,
        figures=("t1c", "flair") if "t2f" in context.brats_images() else ("t1c",),
    )


def _candidate_records(segment: dict) -> tuple[CandidateRecord, ...]:
    """The report's records of the candidates the segment stage gathered."""
    from btk.report import data as report

    return tuple(
        report.CandidateRecord(c["name"], c["origin"], c["source"], c["sha256"], c["labels"])
        for c in segment.get("candidates", [])
    )


def _algorithm_run_records(segment: dict) -> tuple[AlgorithmRunRecord, ...]:
    """The report's records of the algorithms the segment stage ran."""
    from btk.report import data as report

    return tuple(
        report.AlgorithmRunRecord(
            r["algorithm"], r["status"], r.get("message", ""), r.get("device", "-"), r.get("seconds", 0.0)
        )
        for r in segment.get("algorithm_runs", [])
    )


def _agreement_record(agreement_file: Path | None) -> AgreementRecord | None:
    """The candidates' agreement with the consensus, from the fuse stage's agreement report (if it wrote one)."""
    if agreement_file is None:
        return None
    from btk.fusion.agreement import AgreementReport
    from btk.report import data as report

    agreement = AgreementReport.load(agreement_file)
    return report.AgreementRecord(
        agreement.case,
        agreement.convention,
        tuple(report.CandidateAgreementRecord(c.name, c.dice, c.hd95_mm) for c in agreement.candidates),
    )


def algorithm_citation(name: str) -> str | None:
    """The citation of a registered segmentation algorithm (``isen-20``, ...), or None if it is not registered."""
    try:
        from btk.segment import load_registry

        algorithm = load_registry().get(name)
    except (BtkError, ImportError) as error:  # not registered, or the segment extra is missing
        logger.debug("no citation for %s: %s", name, error)
        return None
    challenge = algorithm.challenge or "BraTS"
    return f"{algorithm.name}: {algorithm.authors}, {challenge} {algorithm.year}. {algorithm.citation}"


STAGES: tuple[Stage, ...] = (
    Stage("convert", "converting DICOM", lambda task: task.study.kind == "dicom", convert_stage),
    Stage("preprocess", "preprocessing", lambda task: task.study.kind in ("dicom", "nifti"), preprocess_stage),
    Stage("synthesise", "synthesising the missing modality", lambda task: bool(task.study.missing), synthesise_stage),
    Stage("segment", "segmenting", lambda task: True, segment_stage),
    Stage("fuse", "fusing", lambda task: True, fuse_stage),
    Stage("native", "mapping to native space", lambda task: task.study.kind != "brats", native_stage),
    Stage("dicom", "writing the DICOM SEG", lambda task: task.study.kind == "dicom", dicom_stage),
    Stage("evaluate", "evaluating", lambda task: task.reference is not None, evaluate_stage),
    Stage("report", "writing the report", lambda task: True, report_stage),
)


def stages_for(task: StudyTask) -> list[Stage]:
    """The stages that apply to a study, in order."""
    return [stage for stage in STAGES if stage.applies(task)]


def _grid_found(shape: tuple[int, ...], affine: np.ndarray) -> str:
    """What grid an image is on, for a message: another atlas space's, or just its shape."""
    other = space_of_grid(shape, affine, tolerance_mm=1e-2) if len(shape) == 3 else None
    if other is not None:
        return f"it is on the {other.name} grid ({other.grid.describe()})"
    return f"its shape is {' x '.join(map(str, shape))}"


def _listing(names: list[str]) -> str:
    """``"T1, T1c, T2 and FLAIR"``, ``"T1c"``: names in a sentence."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
