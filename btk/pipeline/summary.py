"""After a batch: the ensemble alarms over the cohort, every exam's page with its alarms, and the cohort summary.

The alarms need every study's agreement, so they are computed here, once all studies are done; the report
(:mod:`btk.report`) only renders what it is handed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from btk.fusion.agreement import AgreementReport, CandidateAgreement, ensemble_alarms
from btk.pipeline.options import StudyTask
from btk.pipeline.study import StudyResult
from btk.report.cohort import write_cohort_summary
from btk.report.data import AgreementRecord, CohortRow, FollowUpRecord, RaisedAlarm
from btk.report.exam import read_exam_report, write_exam_page

#: The fewest fused studies the ensemble alarms are computed over (a median and a MAD need a few cases).
MIN_COHORT = 3


def write_batch_summary(
    output: Path,
    tasks: Sequence[StudyTask],
    results: Sequence[StudyResult],
    *,
    pdf: bool = True,
    followup: FollowUpRecord | None = None,
) -> dict[str, Path]:
    """Write ``summary.csv``, ``summary.html`` and (cohorts of 3+) ``alarms.json``; render the exam pages again.

    Args:
        output: The batch's output folder.
        tasks: Every study of the batch.
        results: What became of each study, in the batch's order.
        pdf: Also print each exam's page to ``report.pdf`` (now that it holds the cohort's alarms).
        followup: The comparison of a patient's visits (``btk run --longitudinal``): the summary and each
            visit's page link it, or say why there is none.

    Returns:
        ``csv``, ``html`` and (when computed) ``alarms`` -> the file written.
    """
    reports = {
        result.study: read_exam_report(output / result.study / "report") for result in results if result.status == "ok"
    }
    fused = {study: data for study, data in reports.items() if data is not None}
    agreements = [_agreement_report(data.agreement) for data in fused.values() if data.agreement]
    written: dict[str, Path] = {}
    alarms: dict[str, list[RaisedAlarm]] | None = None
    if len(agreements) >= MIN_COHORT:
        alarm_report = ensemble_alarms(agreements)
        written["alarms"] = output / "alarms.json"
        alarm_report.save(written["alarms"])
        alarms = {case: [] for case in alarm_report.counts}
        for alarm in alarm_report.alarms:
            alarms[alarm.case].append(RaisedAlarm(alarm.algorithm, alarm.region))
    for study, data in fused.items():
        write_exam_page(
            output / study / "report",
            data,
            None if alarms is None else alarms.get(study, []),
            len(agreements),
            pdf=pdf,
            followup=followup,
        )
    kinds = {task.name: task.study.kind for task in tasks}
    rows = [
        CohortRow(
            result.study,
            result.status,
            result.seconds,
            kinds.get(result.study, ""),
            result.stage if result.status != "ok" else "",
            result.reason,
            fused.get(result.study),
            None if alarms is None else len(alarms.get(result.study, [])),
        )
        for result in results
    ]
    return {**written, **write_cohort_summary(output, rows, alarms is not None, followup)}


def _agreement_report(record: AgreementRecord) -> AgreementReport:
    """The agreement an exam's report shows, as the fusion's alarms read it."""
    return AgreementReport(
        record.case,
        record.convention,
        [CandidateAgreement(c.name, dict(c.dice), dict(c.hd95_mm)) for c in record.candidates],
    )
