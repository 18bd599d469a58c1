"""The exceptions for problems a user can fix, one kind per kind of problem.

Every kind derives from `BtkError`, which the command line prints as one message (exit code 2). Each kind
also derives from the standard exception a Python user would reach for, so a script can tell a bad file from
a dead Docker engine without learning btk's names:

| kind                | also a              | raised when                                                   |
|---------------------|---------------------|---------------------------------------------------------------|
| `InputError`        | `ValueError`        | an input or option is unusable (corrupt, wrong grid, unknown) |
| `MissingFileError`  | `FileNotFoundError` | a file or folder that was named does not exist                |
| `OutputError`       | `OSError`           | the output cannot be written (permissions, full disk, refused)|
| `OutputExistsError` | `FileExistsError`   | the output exists (btk replaces only its own, with `force`)   |
| `EngineError`       | `RuntimeError`      | the Docker engine or a Dask scheduler is unreachable, refuses |
| `ContainerError`    | `RuntimeError`      | an algorithm's container failed, timed out, wrote nothing     |
| `MissingExtraError` | `ImportError`       | an optional extra of btk-mri is not installed                 |

For example:

    from btk import Fusionator

    try:
        result = Fusionator().fuse(candidates, method="mav")
    except FileNotFoundError as error:  # a MissingFileError
        print("skipped, nothing at", error.filename)
    except ValueError as error:  # an InputError: the candidates cannot be fused
        print("skipped:", error)

The kinds pickle with their path and hint, so an error raised in a worker process arrives whole.
"""

from __future__ import annotations

import errno as errno_codes
from pathlib import Path
from typing import Any

#: The distribution name to give ``pip install`` (the import package and the command are ``btk``).
DISTRIBUTION = "btk-mri"


class BtkError(Exception):
    """A problem caused by the input or the options, not by a bug in btk; the base of every kind below.

    The command line prints it as one message and exits with code 2, without a traceback.

    Args:
        problem: What is wrong, in one sentence.
        path: The file or folder concerned, if any.
        hint: What the user can do about it.
    """

    def __init__(self, problem: str, *, path: str | Path | None = None, hint: str | None = None):
        # The standard base's initialiser runs first: ImportError's would reset ``path``.
        super().__init__(_message(problem, Path(path) if path is not None else None, hint))
        self.problem = problem
        self.path = Path(path) if path is not None else None
        self.hint = hint

    def __str__(self) -> str:
        return _message(self.problem, self.path, self.hint)

    def replace(self, **changes: Any) -> BtkError:
        """The same kind of error with some of its fields changed, e.g. a hint that fits the caller better.

        Args:
            **changes: New values for ``problem``, ``path``, ``hint`` (or a kind's own fields).

        Returns:
            A new error of this error's class; fields not named keep their values.
        """
        fields = {"problem": self.problem, **self._keywords(), **changes}
        return type(self)(fields.pop("problem"), **fields)

    def _keywords(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this error (a kind with fields of its own extends them)."""
        return {"path": self.path, "hint": self.hint}

    def __reduce__(self) -> tuple[Any, ...]:
        # The standard bases pickle ``args``, which cannot rebuild an error whose fields are keywords.
        return _rebuild, (type(self), self.problem, self._keywords()), dict(self.__dict__)


class InputError(BtkError, ValueError):
    """An input file or an option value btk cannot use: corrupt, the wrong shape or grid, unknown, contradictory."""


class MissingFileError(BtkError, FileNotFoundError):
    """A file or folder that was named does not exist; ``filename`` is its path, ``errno`` is ``ENOENT``."""

    def __init__(self, problem: str, *, path: str | Path | None = None, hint: str | None = None):
        super().__init__(problem, path=path, hint=hint)
        _set_os_fields(self, errno_codes.ENOENT, problem, path)


class OutputError(BtkError, OSError):
    """The output cannot be written where asked: no permission, a full disk, or a place btk refuses to write.

    ``filename`` is the path concerned; ``errno`` is the operating system's code when one caused it.

    Args:
        problem: What is wrong, in one sentence.
        path: The file or folder concerned, if any.
        hint: What the user can do about it.
        code: The :mod:`errno` code behind it (``errno.ENOSPC`` for a full disk), if any.
    """

    def __init__(
        self, problem: str, *, path: str | Path | None = None, hint: str | None = None, code: int | None = None
    ):
        super().__init__(problem, path=path, hint=hint)
        _set_os_fields(self, code, problem, path)

    def _keywords(self) -> dict[str, Any]:
        return {**super()._keywords(), "code": self.errno}


class OutputExistsError(OutputError, FileExistsError):
    """The output exists already: btk replaces only an output it wrote itself, and only when told to (``force``,
    ``--force``)."""

    def __init__(
        self,
        problem: str,
        *,
        path: str | Path | None = None,
        hint: str | None = None,
        code: int | None = errno_codes.EEXIST,
    ):
        super().__init__(problem, path=path, hint=hint, code=code)


class EngineError(BtkError, RuntimeError):
    """An engine btk drives cannot be used: the Docker engine is down or refuses, an image is missing or will not
    pull or build, a Dask scheduler cannot be reached."""


class ContainerError(BtkError, RuntimeError):
    """An algorithm's container failed: a non-zero exit, a timeout, or no usable segmentation written."""


class MissingExtraError(BtkError, ImportError):  # type: ignore[misc]  # its ``path`` is btk's (a Path)
    """An optional part of btk is not installed; the message names the extra that installs it.

    Args:
        problem: What is missing, e.g. "HD-BET is not installed".
        extra: The extra of the btk-mri distribution that installs it, e.g. ``"preprocess"``.
        path: The file or folder concerned, if any.
        hint: What to do; by default ``pip install "btk-mri[EXTRA]"``.
    """

    def __init__(self, problem: str, *, extra: str, path: str | Path | None = None, hint: str | None = None):
        super().__init__(problem, path=path, hint=hint or f'pip install "{DISTRIBUTION}[{extra}]"')
        self.extra = extra

    def _keywords(self) -> dict[str, Any]:
        return {**super()._keywords(), "extra": self.extra}


def error_kind(name: str) -> type[BtkError]:
    """The kind called ``name``, to rebuild an error another process reported as text (JSON).

    Args:
        name: A class name from this module, e.g. ``"InputError"``.

    Returns:
        That kind; `BtkError` itself for any other name.
    """
    kinds = (InputError, MissingFileError, OutputError, OutputExistsError, EngineError, ContainerError)
    return next((kind for kind in kinds if kind.__name__ == name), BtkError)


def unwritable_folder(folder: str | Path, error: OSError | None = None, *, creating: bool = False) -> OutputError:
    """The error for an output folder that cannot be created or written to (permissions, a full disk, ...).

    Args:
        folder: The output folder.
        error: The operating system's error, whose reason (and ``errno``) the message gives.
        creating: Whether the folder was being created rather than written to.

    Returns:
        The :class:`OutputError` to raise.
    """
    action = "create" if creating else "write to"
    reason = f" ({error.strerror})" if error is not None else ""
    return OutputError(
        f"cannot {action} the output folder{reason}",
        path=folder,
        hint="choose a folder you can write to",
        code=error.errno if error is not None else None,
    )


def _message(problem: str, path: Path | None, hint: str | None) -> str:
    """The one message the command line prints: ``path: problem`` and the hint on a second line."""
    message = f"{path}: {problem}" if path is not None else problem
    if hint:
        message += f"\n  -> {hint}"
    return message


def _set_os_fields(error: OSError, code: int | None, problem: str, path: str | Path | None) -> None:
    """Fill the fields ``except OSError`` handlers read (``errno``, ``strerror``, ``filename``)."""
    error.errno = code
    error.strerror = problem
    error.filename = str(path) if path is not None else None


def _rebuild(kind: type[BtkError], problem: str, keywords: dict[str, Any]) -> BtkError:
    """Unpickle an error: build it again from its fields."""
    return kind(problem, **keywords)
