"""The one exception type for problems a user can fix."""

from __future__ import annotations

from pathlib import Path


class BtkError(Exception):
    """A problem caused by the input or the options, not by a bug in btk.

    The command line prints it as one message and exits non-zero, without a traceback.

    Args:
        problem: What is wrong, in one sentence.
        path: The file or folder concerned, if any.
        hint: What the user can do about it.
    """

    def __init__(self, problem: str, *, path: str | Path | None = None, hint: str | None = None):
        self.problem = problem
        self.path = Path(path) if path is not None else None
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        message = f"{self.path}: {self.problem}" if self.path is not None else self.problem
        if self.hint:
            message += f"\n  -> {self.hint}"
        return message


def unwritable_folder(folder: str | Path, error: OSError | None = None, *, creating: bool = False) -> BtkError:
    """The error for an output folder that cannot be created or written to (permissions, a full disk, ...)."""
    action = "create" if creating else "write to"
    reason = f" ({error.strerror})" if error is not None else ""
    return BtkError(f"cannot {action} the output folder{reason}", path=folder, hint="choose a folder you can write to")
