"""Working folders and files owned by a running btk process, and the removal of those a killed run left.

A run builds its outputs in hidden staging folders beside them and keeps uncompressed working copies of the
patient's images in temporary folders. ``kill -9`` gives it no chance to remove them, so every such folder
is held under an exclusive ``flock`` by its owner while in use: the operating system drops the lock when the
owner dies, however it dies. A later run removes what nobody holds any more (:func:`remove_abandoned`) and
leaves alone what a concurrent run is still using.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path


class OwnedFolder:
    """A fresh folder locked by this process until :meth:`release` (or the process's death).

    Args:
        parent: Where to create it.
        prefix: Start of its name; :func:`remove_abandoned` with the same ``parent`` and ``prefix`` finds it.
    """

    def __init__(self, parent: Path, prefix: str):
        while True:
            path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
            descriptor = _lock(path, blocking=True)
            if descriptor is None:
                raise PermissionError(f"cannot open the folder just created: {path}")
            # Another run's clean-up may have taken the new, not yet locked folder for abandoned and removed
            # it while we waited for the lock: then start again.
            if _same_folder(path, descriptor):
                break
            os.close(descriptor)
        self.path = path
        self._descriptor: int | None = descriptor

    def release(self) -> None:
        """Let go of the lock (the folder itself stays where it is, possibly renamed)."""
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

    def remove(self) -> None:
        """Delete the folder and let go of the lock."""
        shutil.rmtree(self.path, ignore_errors=True)
        self.release()

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


def hold_file(path: Path) -> int:
    """Lock an existing file of this process (e.g. a temporary output); return the descriptor to close."""
    descriptor = os.open(path, os.O_RDONLY)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    return descriptor


def remove_abandoned(parent: Path, prefix: str, infix: str = "") -> list[Path]:
    """Remove what a dead process left in ``parent``: files and folders named ``prefix`` + ... (+ ``infix`` + ...).

    Only entries that no live process holds are removed; entries that cannot be opened (another user's, say)
    and symbolic links are left alone. Returns what was removed.
    """
    removed: list[Path] = []
    try:
        entries = [
            entry
            for entry in Path(parent).iterdir()
            if entry.name.startswith(prefix) and infix in entry.name[len(prefix) :]
        ]
    except OSError:
        return removed
    for entry in entries:
        if entry.is_symlink():
            continue
        descriptor = _lock(entry, blocking=False)
        if descriptor is None:
            continue  # in use, or not ours to open
        try:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
        finally:
            os.close(descriptor)
    return removed


def _lock(path: Path, blocking: bool) -> int | None:
    """An open descriptor of ``path`` holding an exclusive lock on it, or None if it cannot be had."""
    try:
        descriptor = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    except OSError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        return None
    return descriptor


def _same_folder(path: Path, descriptor: int) -> bool:
    try:
        found = os.stat(path)
    except OSError:
        return False
    held = os.fstat(descriptor)
    return (found.st_dev, found.st_ino) == (held.st_dev, held.st_ino)
