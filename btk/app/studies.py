"""What an output folder of ``btk run`` holds, study by study, read from the files the pipeline writes.

Nothing here writes: the list comes from ``manifest.csv`` (every study of the last run, its kind and fate),
``summary.csv`` (volumes, alarms), each study's completion markers and live status (``<study>/.btk/``) and
its ``report/report.json``.
"""

from __future__ import annotations

import csv
import fcntl
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from btk.pipeline.markers import read_marker, read_status, state_folder
from btk.pipeline.stages import STAGES
from btk.report.exam import read_exam_report

#: Every stage a study may go through, in the pipeline's order.
STAGE_ORDER = tuple(stage.name for stage in STAGES)


@dataclass
class StudyState:
    """One study of an output folder as the app lists it.

    ``state`` is ``done``, ``failed``, ``running`` (a stage is being processed, by the app's run or by a
    ``btk run`` elsewhere),
    ``pending`` (listed but not started) or ``incomplete`` (started by a run that stopped).
    """

    name: str
    kind: str = ""
    state: str = "pending"
    stage: str = ""
    reason: str = ""
    stages: dict[str, str] = field(default_factory=dict)  # stage -> "done" | "running"
    volumes_ml: dict[str, float] = field(default_factory=dict)
    alarms: str = ""
    candidates: list[str] = field(default_factory=list)
    report: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file the pipeline wrote (none when it is missing or unreadable)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []


def study_names(output: Path) -> list[str]:
    """The studies of an output folder: those of its manifest, then any other folder with pipeline markers."""
    names = [row["study"] for row in read_csv(output / "manifest.csv") if row.get("study")]
    try:
        entries = sorted(os.scandir(output), key=lambda entry: entry.name)
    except OSError:
        entries = []
    extra = [
        entry.name
        for entry in entries
        if entry.is_dir(follow_symlinks=False) and not entry.name.startswith(".") and entry.name not in names
        if state_folder(Path(entry.path)).is_dir()
    ]
    return names + extra


def list_studies(output: Path, running_since: float | None = None) -> list[StudyState]:
    """The state of every study of ``output``.

    Args:
        output: The output folder of ``btk run`` (or of the app).
        running_since: When the app's current run started (None: no run): a study whose live status is newer
            is ``running``; an older one belongs to a run that stopped.
    """
    manifest = {row["study"]: row for row in read_csv(output / "manifest.csv") if row.get("study")}
    summary = {row["study"]: row for row in read_csv(output / "summary.csv") if row.get("study")}
    return [
        _study_state(output / name, manifest.get(name, {}), summary.get(name, {}), running_since)
        for name in study_names(output)
    ]


def _study_state(folder: Path, listed: dict[str, str], summarised: dict[str, str], since: float | None) -> StudyState:
    study = StudyState(folder.name, kind=listed.get("kind", ""))
    study.stages = {stage: "done" for stage in STAGE_ORDER if read_marker(folder, stage) is not None}
    status = read_status(folder) or {}
    live = (since is not None and status.get("since", 0) >= since) or _being_processed(folder)
    stage = str(status.get("stage", ""))
    if live and stage not in ("done", "failed"):
        study.state, study.stage = "running", stage
        study.stages[stage] = "running"
    elif stage == "done" and "report" in study.stages:
        study.state = "done"
    elif stage == "failed" or listed.get("status") == "failed":
        study.state = "failed"
        study.stage = listed.get("stage") or summarised.get("failed_stage", "")
        study.reason = listed.get("reason") or summarised.get("reason", "")
    elif study.stages or status:
        study.state = "incomplete"
    report = read_exam_report(folder / "report") if "report" in study.stages else None
    if report is not None:
        study.report = True
        study.volumes_ml = dict(report.volumes_ml)
        study.candidates = [candidate.name for candidate in report.candidates]
    study.alarms = summarised.get("alarms", "")
    return study


def _being_processed(folder: Path) -> bool:
    """Whether a run (this app's, or ``btk run`` in a terminal) holds the study's lock now."""
    lock = state_folder(folder) / "lock"
    try:
        handle = open(lock, "rb")  # noqa: SIM115 - closed below; never created here
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
