"""The summary of a batch: one row per study (volumes, alarms, failures) as CSV and HTML.

With three or more fused studies it also computes the ensemble failure alarms over the cohort
(``alarms.json``) and renders every exam's report again with them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

from btk.console import logger
from btk.fusion.agreement import AgreementReport, ensemble_alarms
from btk.io import atomic_path
from btk.labels import REGIONS
from btk.pipeline.options import StudyTask
from btk.pipeline.study import StudyResult
from btk.report.exam import REPORT_DATA, REPORT_PAGE, render_exam_report
from btk.report.html import link, page, table, write_page

COLUMNS = ("study", "status", "failed_stage", "reason", "seconds", "kind", "candidates", "fusion",
           *(f"{r}_ml" for r in REGIONS), "alarms", "report")


def write_cohort_summary(output: Path, tasks: Sequence[StudyTask], results: Sequence[StudyResult]) -> dict[str, Path]:
    """Write ``summary.csv``, ``summary.html`` and (cohorts of 3+) ``alarms.json`` into ``output``."""
    reports = {r.study: _load_report(output / r.study) for r in results if r.status == "ok"}
    reports = {study: data for study, data in reports.items() if data is not None}
    agreements = [AgreementReport.from_dict(d["agreement"]) for d in reports.values() if d.get("agreement")]
    written: dict[str, Path] = {}
    alarms_by_case: dict[str, list[dict]] | None = None
    if len(agreements) >= 3:
        alarm_report = ensemble_alarms(agreements)
        alarm_report.save(output / "alarms.json")
        written["alarms"] = output / "alarms.json"
        alarms_by_case = {case: [] for case in alarm_report.counts}
        for alarm in alarm_report.to_dict()["alarms"]:
            alarms_by_case[alarm["case"]].append(alarm)
    for study, data in reports.items():
        alarms = alarms_by_case.get(study, []) if alarms_by_case is not None else None
        write_page(output / study / "report" / REPORT_PAGE, render_exam_report(data, alarms, len(agreements)))
    kinds = {task.name: task.study.kind for task in tasks}
    rows = [_row(result, kinds.get(result.study, ""), reports.get(result.study), alarms_by_case) for result in results]
    written["csv"] = _write_csv(output / "summary.csv", rows)
    written["html"] = write_page(output / "summary.html", _summary_page(rows, len(agreements)))
    logger.info("Cohort summary: %s", written["html"])
    return written


def _load_report(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "report" / REPORT_DATA).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _row(result: StudyResult, kind: str, data: dict | None, alarms: dict[str, list[dict]] | None) -> dict:
    volumes = data["volumes_ml"] if data else {}
    return {
        "study": result.study,
        "status": result.status,
        "failed_stage": result.stage if result.status != "ok" else "",
        "reason": result.reason,
        "seconds": round(result.seconds, 1),
        "kind": kind,
        "candidates": len(data["candidates"]) if data else "",
        "fusion": data["fusion"].get("method", "") if data else "",
        **{f"{r}_ml": volumes.get(r, "") for r in REGIONS},
        "alarms": len(alarms.get(result.study, [])) if alarms is not None and data else "",
        "report": f"{result.study}/report/{REPORT_PAGE}" if data else "",
    }


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _summary_page(rows: list[dict], fused: int) -> str:
    failed = [row for row in rows if row["status"] != "ok"]
    body = [f"<p>{len(rows)} studies: {len(rows) - len(failed)} done, "
            f'<span class="{"failed" if failed else ""}">{len(failed)} failed</span>. '
            + ("Ensemble alarms computed over the cohort (alarms.json)." if fused >= 3 else
               "Ensemble alarms need at least 3 fused studies.") + "</p>"]
    header = ["study", "status", *(f"{r} (ml)" for r in REGIONS), "alarms", "candidates", "fusion", "seconds", "report / reason"]
    body.append(table(header, [
        [row["study"], row["status"], *(row[f"{r}_ml"] for r in REGIONS), row["alarms"], row["candidates"],
         row["fusion"], row["seconds"],
         link(row["report"], "report") if row["report"] else f"{row['failed_stage']}: {row['reason']}"]
        for row in rows], ["alarm" if row["status"] != "ok" else "" for row in rows]))
    return page("btk cohort summary", body)
