"""A container's output, kept with bounded size and memory: its first and last bytes, and what was dropped.

A container may print gigabytes. btk streams its output into a file as it comes, keeps the first
:data:`HEAD_BYTES` and the last :data:`TAIL_BYTES`, and says how much it dropped in between; it never holds
more than about twice the tail in memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

HEAD_BYTES = 1 << 20
TAIL_BYTES = 1 << 20


class BoundedLog:
    """Write a stream of bytes into ``path``, keeping its first ``head`` and last ``tail`` bytes.

    >>> log = BoundedLog(path)
    >>> for chunk in stream: log.write(chunk)
    >>> log.close()          # path now holds head, a line saying how many bytes were dropped, and tail
    """

    def __init__(self, path: Path, head: int = HEAD_BYTES, tail: int = TAIL_BYTES):
        self.path = path
        self.head, self.tail = head, tail
        self.total = 0
        self.dropped = 0
        self.error: str | None = None
        self._written = 0
        self._end = bytearray()
        self._file: IO[bytes] | None = open(path, "wb")  # noqa: SIM115 - closed in close()

    def write(self, chunk: bytes) -> None:
        """Take the next piece of the stream."""
        self.total += len(chunk)
        if self._written < self.head:
            first, chunk = chunk[: self.head - self._written], chunk[self.head - self._written :]
            self._write_file(first)
            self._written += len(first)
        if not chunk:
            return
        self._end += chunk
        if len(self._end) > 2 * self.tail:
            cut = len(self._end) - self.tail
            self.dropped += cut
            del self._end[:cut]

    def close(self) -> None:
        """Write the kept tail (after a line saying what was dropped) and close the file."""
        if self._file is None:
            return
        if len(self._end) > self.tail:
            cut = len(self._end) - self.tail
            self.dropped += cut
            del self._end[:cut]
        if self.dropped:
            self._write_file(
                f"\n[btk: {self.dropped} bytes of the container's output dropped here; the first {self.head} "
                f"and the last {self.tail} bytes are kept]\n".encode()
            )
        self._write_file(bytes(self._end))
        self._end.clear()
        try:
            self._file.close()
        except OSError as error:
            self.error = self.error or error.strerror or str(error)
        self._file = None

    def last_text(self, size: int = 64 * 1024) -> str:
        """The end of what was kept (after :meth:`close`), decoded."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(max(0, os.fstat(handle.fileno()).st_size - size))
                return handle.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def _write_file(self, data: bytes) -> None:
        if self.error is not None or self._file is None or not data:
            return
        try:
            self._file.write(data)
        except OSError as error:  # e.g. a full temporary disk: the run goes on, the log says why it is short
            self.error = error.strerror or str(error)
