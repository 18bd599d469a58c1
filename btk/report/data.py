"""The facts a report shows, as typed records that the pipeline fills and the report renders.

The report is a leaf: it knows nothing of the pipeline's stages or of the components that made a result. The
pipeline gathers what the report needs (:mod:`btk.pipeline.reporting`) into an :class:`ExamReportData` per
study and a :class:`CohortRow` per study of a batch; the report turns them into pages. An exam's data is
also saved as ``report.json`` beside its page, so that the page can be rendered again (with the cohort's
alarms) after the batch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from btk import __version__
from btk.io import save_json
from btk.modalities import DISPLAY_NAMES


@dataclass(frozen=True)
class CandidateRecord:
    """Where one candidate segmentation came from.

    Args:
        name: The candidate's name (an algorithm's name, or the imported file's name).
        origin: ``"imported"`` (made elsewhere, ``--candidates``) or ``"algorithm"`` (run by btk).
        source: The imported file, or the command that made it.
        sha256: The checksum of the candidate as it was brought in.
        labels: Its label convention, and what it was converted to (``"brats2021 -> brats2023"``).
    """

    name: str
    origin: str
    source: str
    sha256: str
    labels: str


@dataclass(frozen=True)
class AlgorithmRunRecord:
    """How one segmentation algorithm's run went (failed runs are shown as alarms)."""

    algorithm: str
    status: str
    message: str = ""
    device: str = "-"
    seconds: float = 0.0


@dataclass(frozen=True)
class FusionRecord:
    """How the candidates were fused.

    Args:
        method: The fusion method, or a sentence when nothing was fused (a single candidate).
        mode: ``"labels"`` or ``"regions"`` (empty when nothing was fused).
        flavour: The fusion flavour (empty when nothing was fused).
        sources: Region -> the candidates it was taken from (one) or fused from (several), for the regions
            chosen with ``--take``; the others were fused from all candidates.
    """

    method: str
    mode: str = ""
    flavour: str = ""
    sources: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class CandidateAgreementRecord:
    """Dice and HD95 (mm) of one candidate against the consensus, per region."""

    name: str
    dice: dict[str, float]
    hd95_mm: dict[str, float]


@dataclass(frozen=True)
class AgreementRecord:
    """The agreement of every candidate of one case with its consensus (as ``<case>_agreement.json`` has it)."""

    case: str
    convention: str
    candidates: tuple[CandidateAgreementRecord, ...]


@dataclass(frozen=True)
class EvaluationRecord:
    """The Dice of the fused segmentation against a reference, per region."""

    reference: str
    dice: dict[str, float]


@dataclass(frozen=True)
class StageRecord:
    """One step a result went through: how long it took, and its main input (if any), for the provenance."""

    seconds: float
    detail: str = ""


@dataclass(frozen=True)
class SyntheticRecord:
    """A modality that was not acquired but synthesised (``btk run --synthesise-missing``).

    Args:
        modality: Its key (``t1n``, ``t1c``, ``t2w``, ``t2f``).
        algorithm: The synthesis algorithm that made it.
    """

    modality: str
    algorithm: str

    @property
    def label(self) -> str:
        """``"synthetic FLAIR"``."""
        return f"synthetic {DISPLAY_NAMES[self.modality]}"


@dataclass(frozen=True)
class ReportFiles:
    """The result files the page links to, relative to the report's folder."""

    fused: str
    native: str | None = None
    evaluation: str | None = None


@dataclass(frozen=True)
class DicomSegRecord:
    """The DICOM SEG of the result (for the PACS): its file relative to the report's folder, or why there is none."""

    file: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class RaisedAlarm:
    """An ensemble alarm raised for a case: ``algorithm``'s Dice in ``region`` fell below its cohort threshold."""

    algorithm: str
    region: str


@dataclass(frozen=True)
class ExamReportData:
    """Every fact the report of one exam shows.

    Args:
        study: The study's name.
        kind: What the input was (``dicom``, ``nifti``, ``preprocessed``, ``brats``).
        source: The input folder.
        labels: The label convention of every segmentation shown.
        volumes_ml: The volume of each region (WT, TC, ET) of the fused segmentation, in millilitres.
        fusion: How the candidates were fused.
        candidates: Every candidate's origin.
        candidates_source: The folder imported candidates came from (empty: none imported).
        algorithm_runs: The runs of the segmentation algorithms.
        agreement: The candidates' agreement with the consensus (None: a single candidate, nothing fused).
        evaluation: The result against a reference (None: no reference).
        stages: The steps the result went through, in order (the provenance).
        files: The result files, relative to the report's folder.
        preprocessed: The preprocessed exam's folder (empty: the input was already in BraTS space).
        citations: What to cite, in order.
        btk_version: The btk that made the result.
        synthetic: The modality that was synthesised rather than acquired (None: all four were acquired).
        dicom_seg: The DICOM SEG written back for the source series, or why there is none (None: not recorded).
        clinical: The clinical measures of the fused segmentation, as ``clinical.json`` holds them
            (:meth:`btk.clinical.ClinicalFindings.to_dict`; None: not measured).
        figures: The images the segmentation is shown on (``t1c``, ``flair``; the T1c alone for an exam
            without FLAIR, as in meningioma radiotherapy).
    """

    study: str
    kind: str
    source: str
    labels: str
    volumes_ml: dict[str, float]
    fusion: FusionRecord
    candidates: tuple[CandidateRecord, ...]
    files: ReportFiles
    candidates_source: str = ""
    algorithm_runs: tuple[AlgorithmRunRecord, ...] = ()
    agreement: AgreementRecord | None = None
    evaluation: EvaluationRecord | None = None
    stages: dict[str, StageRecord] = field(default_factory=dict)
    preprocessed: str = ""
    citations: tuple[str, ...] = ()
    btk_version: str = __version__
    synthetic: SyntheticRecord | None = None
    dicom_seg: DicomSegRecord | None = None
    clinical: dict[str, Any] | None = None
    figures: tuple[str, ...] = ("t1c", "flair")

    def to_dict(self) -> dict[str, Any]:
        """The data as JSON-ready dictionaries and lists (the content of ``report.json``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> ExamReportData:
        """Rebuild the data from :meth:`to_dict`'s form (also from the ``report.json`` of btk 0.2.0).

        Raises:
            ValueError: ``payload`` is not such a form (a key is missing or has the wrong type).
        """
        try:
            agreement, evaluation = payload.get("agreement"), payload.get("evaluation")
            return cls(
                study=payload["study"],
                kind=payload["kind"],
                source=payload["source"],
                labels=payload["labels"],
                volumes_ml=dict(payload["volumes_ml"]),
                fusion=FusionRecord(
                    payload["fusion"]["method"],
                    payload["fusion"].get("mode", ""),
                    payload["fusion"].get("flavour", ""),
                    {str(k): [str(n) for n in v] for k, v in payload["fusion"].get("sources", {}).items()},
                ),
                candidates=tuple(CandidateRecord(**_fields(CandidateRecord, c)) for c in payload["candidates"]),
                files=_files(payload["files"]),
                candidates_source=payload.get("candidates_source", ""),
                algorithm_runs=tuple(
                    AlgorithmRunRecord(**_fields(AlgorithmRunRecord, r)) for r in payload.get("algorithm_runs", [])
                ),
                agreement=None
                if not agreement
                else AgreementRecord(
                    agreement["case"],
                    agreement["convention"],
                    tuple(
                        CandidateAgreementRecord(**_fields(CandidateAgreementRecord, c))
                        for c in agreement["candidates"]
                    ),
                ),
                evaluation=None if not evaluation else EvaluationRecord(evaluation["reference"], evaluation["dice"]),
                stages={
                    stage: StageRecord(
                        float(d.get("seconds", 0.0)), d.get("detail") or d.get("source") or d.get("reference") or ""
                    )
                    for stage, d in payload.get("stages", {}).items()
                },
                preprocessed=payload.get("preprocessed", ""),
                citations=tuple(payload.get("citations", ())),
                btk_version=payload.get("btk_version", ""),
                synthetic=SyntheticRecord(**payload["synthetic"]) if payload.get("synthetic") else None,
                dicom_seg=DicomSegRecord(**payload["dicom_seg"]) if payload.get("dicom_seg") else None,
                clinical=dict(payload["clinical"]) if payload.get("clinical") else None,
                figures=tuple(payload.get("figures", ("t1c", "flair"))),
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not the data of an exam report ({error.__class__.__name__}: {error})") from None

    def save(self, path: Path) -> Path:
        """Write the data as JSON, atomically; returns ``path``."""
        save_json(self.to_dict(), path)
        return path

    @classmethod
    def load(cls, path: Path) -> ExamReportData:
        """Read the data that :meth:`save` wrote.

        Raises:
            OSError: The file cannot be read.
            ValueError: It is no exam report's data.
        """
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _fields(record: type, payload: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``payload`` that are fields of the dataclass ``record`` (older files have more)."""
    return {item.name: payload[item.name] for item in fields(record) if item.name in payload}


def _files(payload: dict[str, Any]) -> ReportFiles:
    """The linked files, from :meth:`ExamReportData.to_dict`'s form or btk 0.2.0's (stage -> name -> file)."""
    if "fuse" in payload:
        return ReportFiles(
            payload["fuse"]["fused"],
            payload.get("native", {}).get("native"),
            payload.get("evaluate", {}).get("evaluation"),
        )
    return ReportFiles(payload["fused"], payload.get("native"), payload.get("evaluation"))


@dataclass(frozen=True)
class CohortRow:
    """One study of a batch in the cohort summary.

    Args:
        study: The study's name.
        status: ``"ok"`` or ``"failed"``.
        seconds: How long the study took.
        kind: What its input was (``dicom``, ``nifti``, ...; empty if unknown).
        failed_stage, reason: Where and why it failed (empty when it did not).
        report: Its exam report's data (None: it failed, or its report cannot be read).
        alarms: How many ensemble alarms the cohort raised for it (None: no alarms were computed).
    """

    study: str
    status: str
    seconds: float
    kind: str = ""
    failed_stage: str = ""
    reason: str = ""
    report: ExamReportData | None = None
    alarms: int | None = None


@dataclass(frozen=True)
class FollowUpRecord:
    """The comparison of one patient's visits (``btk run --longitudinal``), for the summary and each visit's page.

    Args:
        visits: The visits' study names, baseline first.
        page: The comparison page (``compare/compare.html``), relative to the batch's output folder; None when
            there is no comparison.
        reason: Why there is none (a visit failed, ...); empty when there is one.
        responses: Follow-up visit -> its response category and why (``"PD: 1 new focus/foci"``).
    """

    visits: tuple[str, ...]
    page: str | None
    reason: str = ""
    responses: dict[str, str] = field(default_factory=dict)

    def visit_number(self, study: str) -> int:
        """The study's place among the visits (1: the baseline), 0 when it is none."""
        return self.visits.index(study) + 1 if study in self.visits else 0
