"""The private workspace that receives exams dropped into the browser, one folder per upload."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import threading
from io import BufferedIOBase
from pathlib import Path

from btk.app.security import confine, private_folder
from btk.errors import InputError, OutputError

#: The largest upload (all its files together) the app accepts unless told otherwise, in bytes.
DEFAULT_LIMIT = 4 * 1024**3
_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_CHUNK = 1024 * 1024


class Uploads:
    """Uploaded exams in a private temporary folder (readable by this user only), deleted when the app stops.

    Args:
        limit: The most bytes one upload may hold (every file of it together).
        parent: Where the workspace is made (default: the system's temporary folder).
    """

    def __init__(self, limit: int = DEFAULT_LIMIT, parent: Path | None = None):
        self.limit = limit
        self.root = private_folder(Path(tempfile.mkdtemp(prefix="btk-app-uploads-", dir=parent))).resolve()
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    def new(self) -> str:
        """Create an empty upload; returns its id (its folder's name)."""
        upload = secrets.token_hex(8)
        private_folder(self.root / upload)
        with self._lock:
            self._sizes[upload] = 0
        return upload

    def folder(self, upload: str) -> Path:
        """The folder of an upload.

        Raises:
            InputError: For an id that is not one of this workspace's uploads.
        """
        if not _UPLOAD_ID.fullmatch(upload) or upload not in self._sizes:
            raise InputError("no such upload", hint="drop the folder into the page again")
        return self.root / upload

    def receive(self, upload: str, relative: str, stream: BufferedIOBase, length: int) -> Path:
        """Write one file of an upload from ``stream`` (``length`` bytes), at ``relative`` inside it.

        The file is written under a temporary name and renamed when complete, so a broken transfer leaves
        no half file that looks whole.

        Raises:
            InputError: For a path leading out of the upload, or an upload over the size limit.
        """
        folder = self.folder(upload)
        target = confine(folder, relative)
        if target == folder or any(part.startswith(".") for part in target.relative_to(folder).parts):
            raise InputError("not a file name the app accepts", hint="upload the exam's image or DICOM files")
        with self._lock:
            if self._sizes[upload] + length > self.limit:
                raise InputError(
                    f"the upload is larger than the limit of {self.limit / 1024**3:.1f} GiB",
                    hint="start the app with a larger --max-upload-gb, or choose the folder on the server",
                )
            self._sizes[upload] += length
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.partial-{secrets.token_hex(4)}")
        try:
            with open(temporary, "wb") as handle:
                remaining = length
                while remaining > 0:
                    chunk = stream.read(min(_CHUNK, remaining))
                    if not chunk:
                        raise InputError("the upload was cut off", hint="drop the folder into the page again")
                    handle.write(chunk)
                    remaining -= len(chunk)
            os.replace(temporary, target)
        except OSError as error:
            raise OutputError(f"cannot store the upload ({error.strerror})", code=error.errno) from None
        finally:
            temporary.unlink(missing_ok=True)
        return target

    def remove_all(self) -> None:
        """Delete the workspace and every upload in it."""
        shutil.rmtree(self.root, ignore_errors=True)
