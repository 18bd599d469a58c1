"""What a killed ``btk segment`` leaves behind, and its removal by the next run.

A run killed outright (``kill -9``, a closed terminal, a crash of the machine's session) cannot remove its
containers or its temporary copies of the exam. Both therefore carry their owner: the containers as
labels (:meth:`Owner.labels`), the temporary folders in their name (:func:`make_workdir`): host name,
process id and the process's start time (so a reused process id does not pass for the old owner). The
next run removes those whose owner is dead (:func:`remove_leftovers`); those of live runs, of other
machines, or without an owner are never touched.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from btk.console import logger
from btk.errors import BtkError

if TYPE_CHECKING:
    from btk.segment.engine import Engine

HOST_LABEL = "org.btk.host"
PID_LABEL = "org.btk.pid"
STARTED_LABEL = "org.btk.started"
WORKDIR_PREFIX = "btk-segment-"
_WORKDIR_NAME = re.compile(rf"^{WORKDIR_PREFIX}(\d+)-(\d+)-")


@dataclass(frozen=True)
class Owner:
    """The btk process that created a container or a temporary folder."""

    host: str
    pid: int
    started: str

    @classmethod
    def current(cls) -> Owner:
        """This process."""
        return cls(socket.gethostname(), os.getpid(), _start_time(os.getpid()))

    @classmethod
    def from_labels(cls, labels: dict[str, str]) -> Owner | None:
        """The owner recorded on a container; None for one without (made by an older btk)."""
        try:
            return cls(labels[HOST_LABEL], int(labels[PID_LABEL]), labels[STARTED_LABEL])
        except (KeyError, ValueError):
            return None

    def labels(self) -> dict[str, str]:
        """The container labels that record this owner."""
        return {HOST_LABEL: self.host, PID_LABEL: str(self.pid), STARTED_LABEL: self.started}

    def dead(self) -> bool:
        """Whether this owner certainly ended: same host, and its process is gone (or is another one now)."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # it exists, as another user
        return _start_time(self.pid) != self.started


def _start_time(pid: int) -> str:
    """A process's start time in clock ticks after boot (Linux); "0" where the system does not say."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError, UnicodeDecodeError):
        return "0"


def make_workdir(algorithm: str) -> Path:
    """A fresh private temporary folder for one algorithm's run, named after this process."""
    owner = Owner.current()
    return Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{owner.pid}-{owner.started}-{algorithm}-"))


def remove_leftovers(engine: Engine) -> None:
    """Remove the containers and temporary folders of btk runs that died (logged, one line each)."""
    remove_orphaned_containers(engine)
    remove_abandoned_workdirs()


def remove_orphaned_containers(engine: Engine) -> None:
    """Remove btk's containers whose owning process on this host has ended (a warning if the engine fails)."""
    try:
        containers = engine.containers()
    except BtkError as error:
        logger.warning("Could not look for containers left behind by killed btk runs: %s", error.problem)
        return
    for container in containers:
        owner = Owner.from_labels(container.labels or {})
        if owner is not None and owner.dead():
            logger.info(
                "Removing container %s (%s), left behind by a btk run that ended (pid %d)",
                container.short_id,
                (container.labels or {}).get("org.btk.algorithm", "?"),
                owner.pid,
            )
            engine.remove(container)


def remove_abandoned_workdirs(folder: Path | None = None) -> None:
    """Remove this user's temporary exam copies in ``folder`` (default: the temp folder) whose run has ended."""
    folder = Path(folder or tempfile.gettempdir())
    host = socket.gethostname()
    try:
        matches = [match for match in map(_WORKDIR_NAME.match, os.listdir(folder)) if match]
    except OSError:
        return
    for match in matches:
        pid, started = match.groups()
        path = folder / match.string
        try:
            status = path.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.geteuid():
            continue  # a link, a file, or another user's: not ours to remove
        if not Owner(host, int(pid), started).dead():
            continue
        logger.info("Removing %s, a temporary copy of an exam left behind by a btk run that ended (pid %s)", path, pid)
        shutil.rmtree(path, ignore_errors=True)
        if os.path.lexists(path):
            logger.warning("Could not remove all of %s; remove it yourself (a root image's files: `sudo rm -r`)", path)
