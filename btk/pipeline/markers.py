"""Completion markers, live status and a per-study lock: what makes a batch resumable.

Each finished stage of a study leaves ``<study>/.btk/<stage>.json`` naming its outputs with their sizes. A
stage counts as done only when its marker exists and every output it names is still there with that
size; the marker is written (atomically) after the outputs, so a crash in between just redoes the stage.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from btk.errors import unwritable_folder
from btk.io import save_json

STATE_FOLDER = ".btk"


def state_folder(study_folder: Path) -> Path:
    """The hidden folder holding a study's markers, status, lock and error log."""
    return study_folder / STATE_FOLDER


def marker_path(study_folder: Path, stage: str) -> Path:
    return state_folder(study_folder) / f"{stage}.json"


def write_marker(study_folder: Path, stage: str, outputs: dict[str, Path], details: dict | None = None) -> dict:
    """Mark ``stage`` complete with its outputs (name -> file) and details; returns the marker's content."""
    payload = {
        "stage": stage,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "outputs": {
            name: {"path": os.path.relpath(path, study_folder), "bytes": Path(path).stat().st_size}
            for name, path in outputs.items()
        },
        "details": details or {},
    }
    save_json(payload, marker_path(study_folder, stage))
    return payload


def read_marker(study_folder: Path, stage: str) -> dict | None:
    """The marker of a completed stage, or None when the stage must (re)run.

    A marker whose outputs are missing or changed in size does not count.
    """
    path = marker_path(study_folder, stage)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for output in payload.get("outputs", {}).values():
        file = study_folder / output["path"]
        if not file.is_file() or file.stat().st_size != output["bytes"]:
            return None
    return payload


def marker_outputs(study_folder: Path, marker: dict) -> dict[str, Path]:
    """A marker's outputs as absolute paths."""
    return {name: study_folder / output["path"] for name, output in marker["outputs"].items()}


def remove_marker(study_folder: Path, stage: str) -> None:
    """Forget that ``stage`` is complete (before its outputs are replaced or removed)."""
    marker_path(study_folder, stage).unlink(missing_ok=True)


def clear_markers(study_folder: Path) -> None:
    """Forget every completed stage of a study (``--force``)."""
    for path in state_folder(study_folder).glob("*.json"):
        if path.name != "status.json":
            path.unlink(missing_ok=True)


def write_status(study_folder: Path, stage: str) -> None:
    """Record which stage a study is in now, for the progress display."""
    save_json(
        {"stage": stage, "host": socket.gethostname(), "pid": os.getpid(), "since": time.time()},
        state_folder(study_folder) / "status.json",
    )


def read_status(study_folder: Path) -> dict | None:
    """The current stage of a study being processed, if it says so."""
    try:
        return json.loads((state_folder(study_folder) / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@contextmanager
def study_lock(study_folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on a study while it is processed.

    A second ``btk run`` (or a left-over worker of an interrupted one) on the same output waits here until
    the first lets go; the operating system releases the lock when its holder dies, even by ``kill -9``.
    """
    folder = state_folder(study_folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / "lock", "a+")  # noqa: SIM115 - held until the study ends
    except OSError as error:
        raise unwritable_folder(study_folder, error) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
