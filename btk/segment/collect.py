"""Reading a container's output folder without ever being led out of it.

A container controls everything in its output folder. It can leave a symbolic link there (to
``/etc/passwd``, to another patient's segmentation), a FIFO that blocks whoever opens it, a socket, a
device node, or a hard link. btk therefore never opens a path in that folder directly:
:func:`list_output` walks the folder without following any link, and :func:`copy_out` copies one regular,
singly-linked file into btk's own folder (opened with ``O_NOFOLLOW``, checked again on the open
descriptor) before anything reads it. Everything btk takes from a container goes through these two.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from btk.errors import ContainerError, OutputError

FILE = "a regular file"
FOLDER = "a folder"
#: At most this many entries are listed, and folders this deep: a container may create millions.
MAX_ENTRIES = 10_000
MAX_DEPTH = 16
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class Entry:
    """One entry of a container's output folder: its relative POSIX path and what it is."""

    path: str
    kind: str

    @property
    def regular(self) -> bool:
        """Whether btk may read it: a regular file with one name."""
        return self.kind == FILE

    def describe(self) -> str:
        """``name`` for a regular file or folder, ``name (a symbolic link)`` for anything else.

        A name with control characters (a container chooses them) is quoted with escapes, never printed raw.
        """
        name = self.path if self.path.isprintable() else ascii(self.path)
        return name if self.kind in (FILE, FOLDER) else f"{name} ({self.kind})"


def kind_of(status: os.stat_result) -> str:
    """What an ``lstat`` result describes, in words; only :data:`FILE` may be read."""
    mode = status.st_mode
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return FOLDER
    if stat.S_ISREG(mode):
        return FILE if status.st_nlink == 1 else "a hard link (a file with several names)"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device node"
    return "a special file"


def list_output(folder: Path) -> list[Entry]:
    """Every entry below ``folder``, sorted, found without following links (bounded in number and depth)."""
    entries: list[Entry] = []
    descriptor = _open_folder(folder)
    try:
        _walk(descriptor, "", entries, MAX_DEPTH)
    finally:
        os.close(descriptor)
    return entries


def _open_folder(folder: Path) -> int:
    """A descriptor of the container's output folder itself (btk made it: never a link)."""
    try:
        return os.open(folder, _FOLDER_FLAGS)
    except OSError as error:
        raise ContainerError(
            f"cannot read the container's output folder ({error.strerror})",
            hint="the image changed the folder's permissions or removed it; see its log",
        ) from None


def _walk(descriptor: int, prefix: str, entries: list[Entry], depth: int) -> None:
    with os.scandir(descriptor) as listing:
        names = sorted(entry.name for entry in listing)
    for name in names:
        if len(entries) >= MAX_ENTRIES:
            return
        try:
            kind = kind_of(os.stat(name, dir_fd=descriptor, follow_symlinks=False))
        except OSError:
            continue  # gone meanwhile
        entries.append(Entry(prefix + name, kind))
        if kind != FOLDER or depth <= 1:
            continue
        try:
            child = os.open(name, _FOLDER_FLAGS, dir_fd=descriptor)
        except OSError:
            continue  # not readable by us (a root image's folder): listed, not entered
        try:
            _walk(child, f"{prefix}{name}/", entries, depth - 1)
        finally:
            os.close(child)


def not_regular(entry: Entry) -> ContainerError:
    """The failure for a result that is a link or a special file."""
    name = entry.path if entry.path.isprintable() else ascii(entry.path)
    return ContainerError(
        f"the result {name} is {entry.kind}, not a regular file: btk never follows links or opens "
        "special files out of a container's folders",
        hint="the image is broken or tries to make btk read other files; report it to its authors",
    )


def copy_out(folder: Path, entry: Entry, into: Path) -> Path:
    """Copy the regular file ``folder/entry.path`` (directly in ``folder``) to ``into``; return the copy.

    Refused (a :class:`ContainerError`) unless it is a regular file with a single name, both before it is opened
    and on the opened descriptor, so that nothing swapped in meanwhile is read either.
    """
    if not entry.regular:
        raise not_regular(entry)
    descriptor = _open_folder(folder)
    try:
        try:
            before = os.stat(entry.path, dir_fd=descriptor, follow_symlinks=False)
            if kind_of(before) != FILE:
                raise not_regular(Entry(entry.path, kind_of(before)))
            source = os.open(entry.path, _FILE_FLAGS, dir_fd=descriptor)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise not_regular(Entry(entry.path, "a symbolic link")) from None
            raise ContainerError(f"cannot read the result {entry.path} ({error.strerror})") from None
    finally:
        os.close(descriptor)
    with open(source, "rb") as reader:
        opened = os.fstat(reader.fileno())
        if kind_of(opened) != FILE or (opened.st_dev, opened.st_ino) != (before.st_dev, before.st_ino):
            raise not_regular(Entry(entry.path, "a file swapped while btk opened it"))
        target = into / Path(entry.path).name
        try:
            with open(target, "xb") as writer:
                shutil.copyfileobj(reader, writer, 1 << 20)
        except OSError as error:
            target.unlink(missing_ok=True)
            raise OutputError(
                f"cannot copy the result out of the container's folder ({error.strerror})",
                path=into,
                hint="free space there, or set TMPDIR to a folder on a disk with room",
                code=error.errno,
            ) from None
    return target
