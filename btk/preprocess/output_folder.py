"""Output folders written atomically: built in a locked hidden sibling, renamed into place when complete.

Used by ``btk preprocess`` (an exam folder) and ``btk convert`` (a folder of NIfTI files). A run killed at
any moment leaves no half-written folder that looks complete; the next run on the same output removes what
the killed one left (its staging folder, its working copies) and never what a live concurrent run uses.
"""

from __future__ import annotations

import glob
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from btk.console import logger
from btk.errors import BtkError, OutputError, unwritable_folder
from btk.io import DISK_FULL_ERRORS, disk_full
from btk.staging import OwnedFolder, remove_abandoned

#: Name prefix of the private working folders (uncompressed copies of the images) in the temporary folder.
WORK_PREFIX = "btk-preprocess-"
#: Name prefix of the registration workers' temporary folders.
REGISTRATION_PREFIX = "btk-ants-"


def _staging_prefix(output_dir: Path) -> str:
    return f".{output_dir.name}.partial-"


def _staging_folder(output_dir: Path, required_mb: float = 0) -> OwnedFolder:
    """A hidden folder beside ``output_dir`` to build the output in, locked while this process lives.

    Args:
        output_dir: The output folder (absolute).
        required_mb: Free space the output needs; less is an error before any work is done.
    """
    try:
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        free_mb = shutil.disk_usage(output_dir.parent).free / 2**20
        if free_mb < required_mb:
            raise OutputError(
                f"not enough free space: {free_mb:.0f} MB free, the output needs about {required_mb:.0f} MB",
                path=output_dir.parent,
                hint="free some space there, or choose an output folder on another disk",
            )
        return OwnedFolder(output_dir.parent, _staging_prefix(output_dir))
    except BtkError:  # before OSError: an OutputError is both
        raise
    except OSError as error:
        if error.errno in DISK_FULL_ERRORS:
            raise disk_full(output_dir.parent) from None
        raise unwritable_folder(output_dir.parent, error) from None


@contextmanager
def built_atomically(output_dir: Path, required_mb: float = 0) -> Iterator[Path]:
    """Build ``output_dir`` in the folder this yields; it replaces ``output_dir`` only if the block succeeds.

    On any error (Ctrl-C included) the staging folder is removed and the error names ``output_dir``, not the
    staging folder; a full disk becomes one clear error.

    Args:
        output_dir: The output folder (absolute).
        required_mb: Free space the output needs; less is an error before any work is done.
    """
    staging = _staging_folder(output_dir, required_mb)
    try:
        yield staging.path
        _publish(staging.path, output_dir)
    except BaseException as error:
        staging.remove()
        clearer = _as_seen_from_output(error, staging.path, output_dir)
        if clearer is error:
            raise
        raise clearer from None
    staging.release()


def remove_abandoned_outputs(output_dir: Path) -> None:
    """Remove the staging folders and working copies that killed runs left (never those of live runs).

    A run killed while it renamed its result into place may have left the previous output aside
    (``.<name>.previous-*``): it is put back if nothing took its place, else removed.
    """
    for previous in output_dir.parent.glob(f".{glob.escape(output_dir.name)}.previous-*"):
        if previous.is_dir() and not previous.is_symlink() and not output_dir.exists():
            previous.rename(output_dir)
        else:
            shutil.rmtree(previous, ignore_errors=True)
    for removed in remove_abandoned(output_dir.parent, _staging_prefix(output_dir)):
        logger.info("Removed %s, left by an interrupted run", removed)
    for prefix in (WORK_PREFIX, REGISTRATION_PREFIX):
        for removed in remove_abandoned(Path(tempfile.gettempdir()), prefix):
            logger.info("Removed %s, left by an interrupted run", removed)


def _publish(staging: Path, output_dir: Path) -> None:
    """Rename the finished ``staging`` folder onto ``output_dir``, replacing what was there."""
    previous = None
    if output_dir.exists():
        previous = output_dir.with_name(f".{output_dir.name}.previous-{staging.name.rsplit('-', 1)[-1]}")
        output_dir.rename(previous)
    staging.rename(output_dir)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


def _as_seen_from_output(error: BaseException, staging: Path, output_dir: Path) -> BaseException:
    """The error to show: one naming the output, not the removed staging folder; a full disk as a clear error."""
    if isinstance(error, OSError) and not isinstance(error, BtkError) and error.errno in DISK_FULL_ERRORS:
        return disk_full(output_dir)
    if (
        isinstance(error, BtkError)
        and error.path is not None
        and (error.path == staging or staging in error.path.parents)
    ):
        return error.replace(path=output_dir)
    return error
