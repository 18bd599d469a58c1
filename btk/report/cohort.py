"""The summary of a batch: one row per study (volumes, alarms, failures) as CSV and HTML.

The rows are :class:`~btk.report.data.CohortRow` records that the pipeline fills; the ensemble alarms over the
cohort are computed there too (they need every study's agreement), and each exam's page is rendered again
with its alarms (:func:`btk.report.exam.render_exam_report`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from html import escape
from pathlib import Path

from btk.console import logger
from btk.io import atomic_path
from btk.labels import REGIONS
from btk.report.data import CohortRow, FollowUpRecord
from btk.report.exam import REPORT_PAGE
from btk.report.html import link, page, table, write_page


def columns(regions: Sequence[str]) -> tuple[str, ...]:
    """The CSV's columns, with one volume column per region (``WT_ml``, ...)."""
    return (
        "study",
        "status",
        "failed_stage",
        "reason",
        "seconds",
        "kind",
        "candidates",
        "fusion",
        *(f"{r}_ml" for r in regions),
        "alarms",
        "report",
    )


def write_cohort_summary(
    output: Path, rows: Sequence[CohortRow], alarms_computed: bool, followup: FollowUpRecord | None = None
) -> dict[str, Path]:
    """Write ``summary.csv`` and ``summary.html`` into ``output``.

    Args:
        output: The batch's output folder (each study's report is in ``<study>/report/``).
        rows: One row per study, in the batch's order.
        alarms_computed: Whether ensemble alarms were computed over the cohort (3 or more fused studies).
        followup: The comparison of a patient's visits, linked from the page (or why there is none).

    Returns:
        ``csv`` and ``html`` -> the file written.
    """
    regions = _regions(rows)
    values = [_values(row, regions) for row in rows]
    written = {
        "csv": _write_csv(output / "summary.csv", values, regions),
        "html": write_page(output / "summary.html", _summary_page(values, regions, alarms_computed, followup)),
    }
    logger.info("Cohort summary: %s", written["html"])
    return written


def _regions(rows: Sequence[CohortRow]) -> tuple[str, ...]:
    """The regions of the studies' volumes, in the order they first appear (the glioma ones if none has any)."""
    found = dict.fromkeys(region for row in rows if row.report for region in row.report.volumes_ml)
    return tuple(found) or REGIONS


def _values(row: CohortRow, regions: Sequence[str]) -> dict[str, object]:
    """The row's cells, by column (empty where a study has no report)."""
    data = row.report
    volumes = data.volumes_ml if data else {}
    return {
        "study": row.study,
        "status": row.status,
        "failed_stage": row.failed_stage,
        "reason": row.reason,
        "seconds": round(row.seconds, 1),
        "kind": row.kind,
        "candidates": len(data.candidates) if data else "",
        "fusion": data.fusion.method if data else "",
        **{f"{r}_ml": volumes.get(r, "") for r in regions},
        "alarms": row.alarms if row.alarms is not None and data else "",
        "report": f"{row.study}/report/{REPORT_PAGE}" if data else "",
    }


def _write_csv(path: Path, rows: list[dict[str, object]], regions: Sequence[str]) -> Path:
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns(regions))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _summary_page(
    rows: list[dict[str, object]], regions: Sequence[str], alarms_computed: bool, followup: FollowUpRecord | None
) -> str:
    failed = [row for row in rows if row["status"] != "ok"]
    body = [
        f"<p>{len(rows)} studies: {len(rows) - len(failed)} done, "
        f'<span class="{"failed" if failed else ""}">{len(failed)} failed</span>. '
        + (
            "Ensemble alarms computed over the cohort (alarms.json)."
            if alarms_computed
            else "Ensemble alarms need at least 3 fused studies."
        )
        + "</p>"
    ]
    if followup is not None:
        body.append(_followup(followup))
    header = [
        "study",
        "status",
        *(f"{r} (ml)" for r in regions),
        "alarms",
        "candidates",
        "fusion",
        "seconds",
        "report / reason",
    ]
    body.append(
        table(
            header,
            [
                [
                    row["study"],
                    row["status"],
                    *(row[f"{r}_ml"] for r in regions),
                    row["alarms"],
                    row["candidates"],
                    row["fusion"],
                    row["seconds"],
                    link(str(row["report"]), "report") if row["report"] else f"{row['failed_stage']}: {row['reason']}",
                ]
                for row in rows
            ],
            ["alarm" if row["status"] != "ok" else "" for row in rows],
        )
    )
    return page("btk cohort summary", body)


def _followup(followup: FollowUpRecord) -> str:
    """The paragraph on the comparison of a patient's visits: its page and each follow-up's response, or why
    there is none."""
    visits = f"{len(followup.visits)} visits of one patient (baseline {escape(followup.visits[0])})"
    if followup.page is None:
        return f'<h2>Follow-up</h2><p>{visits}: <span class="failed">{escape(followup.reason)}</span></p>'
    responses = "".join(f"<li>{escape(visit)}: {escape(text)}</li>" for visit, text in followup.responses.items())
    return (
        f"<h2>Follow-up</h2><p>{visits}: {link(followup.page, 'the follow-up comparison')} (volumes over time, "
        f"new and vanished foci, response).</p><ul>{responses}</ul>"
    )
