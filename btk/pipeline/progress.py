"""The live display of a batch: one overall bar, and the current stage of every study being processed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rich.progress import Progress, TaskID

from btk.console import progress
from btk.pipeline.markers import read_status


class BatchProgress:
    """Overall bar plus one line per running study, refreshed from the studies' status files.

    Workers (local or on a cluster) write ``<study>/.btk/status.json`` when they enter a stage; this
    display reads them, so it needs nothing but the shared output folder.
    """

    def __init__(self, output: Path, studies: list[str], interval: float = 0.5):
        self.output = output
        self.pending = set(studies)
        self.started = time.time()
        self.interval = interval
        self.display: Progress = progress()
        self.overall: TaskID = self.display.add_task("Studies", total=len(studies))
        self.lines: dict[str, TaskID] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh_loop, daemon=True, name="btk-progress")

    def __enter__(self) -> BatchProgress:
        self.display.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.display.stop()

    def finished(self, study: str, status: str) -> None:
        """Count a study as finished and drop its line."""
        with self._lock:
            self._finished(study, status)

    def _finished(self, study: str, status: str) -> None:
        self.pending.discard(study)
        line = self.lines.pop(study, None)
        if line is not None:
            self.display.remove_task(line)
        self.display.advance(self.overall)
        if status != "ok":
            self.display.update(self.overall, description="Studies (some failed)")

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()

    def refresh(self) -> None:
        """Show the stage every started, unfinished study is in."""
        with self._lock:
            self._refresh()

    def _refresh(self) -> None:
        for study in list(self.pending):
            status = read_status(self.output / study)
            if not status or status.get("since", 0) < self.started or status.get("stage") in ("done", "failed"):
                continue
            text = f"  {study}: {status['stage']} (worker {status.get('host', '?')}:{status.get('pid', '?')})"
            if study in self.lines:
                self.display.update(self.lines[study], description=text)
            else:
                self.lines[study] = self.display.add_task(text, total=None)
