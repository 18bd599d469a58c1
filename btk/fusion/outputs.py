"""The three files of one fusion (image, provenance sidecar, agreement report), checked and published together.

A fusion's outputs are published so that a sidecar never describes an image that is not there:

1. every file is written completely under a hidden temporary name beside its final name (a full disk or an
   unwritable folder fails here, and nothing is published);
2. the previous outputs' sidecars are removed (``--force``), so an old sidecar never describes a new image;
3. the image is renamed into place, then the agreement report, then the sidecar.

The sidecar records the image's SHA-256, and it comes last: a fusion is complete when its sidecar exists
and matches its image (:func:`is_complete`). A process killed at any moment leaves either the previous
state, or an image without a sidecar, which counts as incomplete, and hidden temporary files that the next
fusion to the same output removes.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from btk.errors import BtkError, OutputExistsError, unwritable_folder
from btk.io import (
    DISK_FULL_ERRORS,
    check_replaceable,
    disk_full,
    refuse_overlap,
    require_nifti_name,
    sha256,
    strip_nifti_suffix,
    written_by_btk,
)
from btk.staging import hold_file, remove_abandoned


def sidecar_paths(path: str | Path) -> tuple[Path, Path]:
    """The provenance sidecar and agreement report written beside a fused image."""
    path = Path(path)
    stem = strip_nifti_suffix(path)
    return path.with_name(f"{stem}.json"), path.with_name(f"{stem}_agreement.json")


#: Keys that identify the JSON files a fusion writes (which ``--force`` may replace).
_SIDECAR_KEYS = {"btk_version", "method", "candidates"}
_AGREEMENT_KEYS = {"case", "convention", "candidates"}


def check_outputs(path: str | Path, force: bool, inputs: Iterable[str | Path | None] = ()) -> Path:
    """Check that a fusion may write ``path`` and its two sidecars; return ``path``.

    The image needs a NIfTI name; none of the three files may be, hold or lie inside one of ``inputs``
    (the candidates and their folders); an existing one is replaced only with ``force``, and only if btk
    wrote it (:func:`btk.io.guard_output`). An image left without its sidecar by an interrupted run is
    named as such.
    """
    path = Path(path)
    require_nifti_name(path)
    sidecar, agreement = sidecar_paths(path)
    inputs = list(inputs)
    for output in (path, sidecar, agreement):
        refuse_overlap(output, inputs)
    if path.is_file() and not force and not sidecar.exists() and written_by_btk(path):
        raise OutputExistsError(
            f"the output exists already, without its sidecar {sidecar.name}: an interrupted fusion left it",
            path=path,
            hint="pass --force to replace it",
        )
    check_replaceable(path, force)
    check_replaceable(sidecar, force, replaceable=lambda file: _json_keys(file) >= _SIDECAR_KEYS)
    check_replaceable(agreement, force, replaceable=lambda file: _json_keys(file) >= _AGREEMENT_KEYS)
    return path


def _json_keys(path: Path) -> set[str]:
    """The top-level keys of a JSON object file (empty for anything else)."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    return set(content) if isinstance(content, dict) else set()


def is_complete(path: str | Path) -> bool:
    """Whether a fused image is on disk with the sidecar that describes it (a fusion that ran to its end)."""
    path = Path(path)
    sidecar, _ = sidecar_paths(path)
    try:
        recorded = json.loads(sidecar.read_text(encoding="utf-8"))["output"]["sha256"]
        return path.is_file() and recorded == sha256(path)
    except (OSError, ValueError, KeyError, TypeError):
        return False


Writer = Callable[[Path], None]


def publish(path: Path, write_image: Writer, write_sidecars: Callable[[str], Sequence[tuple[Path, Writer]]]) -> None:
    """Write a fused image and its sidecars under temporary names, then rename them in the safe order.

    Temporary files are locked while in use; those of these outputs that a killed run left are removed
    (:func:`btk.staging.remove_abandoned`).

    Args:
        path: The image's final name.
        write_image: Writes the image to the path it is given.
        write_sidecars: Given the image's SHA-256, returns ``(final name, writer)`` of each sidecar, in the
            order they are to appear; the last one marks the fusion as complete.
    """
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise unwritable_folder(folder, error, creating=True) from None
    with _Temporaries(folder) as temporary:
        try:
            image = temporary(path, write_image)
            sidecars = [(final, temporary(final, writer)) for final, writer in write_sidecars(sha256(image))]
        except BtkError:  # the writers' own errors (an OutputError is an OSError too) say what happened
            raise
        except OSError as error:  # a full disk, a quota, a folder that went away
            raise (disk_full(folder) if error.errno in DISK_FULL_ERRORS else unwritable_folder(folder, error)) from None
        for final, _ in reversed(sidecars):  # old sidecars must not describe the new image
            final.unlink(missing_ok=True)
        os.replace(image, path)
        for final, written in sidecars:
            os.replace(written, final)


class _Temporaries:
    """Complete files written under hidden, locked temporary names in one folder; those not renamed away
    are removed on exit."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.made: list[Path] = []
        self.locks: list[int] = []

    def __call__(self, final: Path, writer: Writer) -> Path:
        """Write the file that is to become ``final`` with ``writer``; return its temporary name."""
        prefix = f".{final.name}."
        for abandoned in (prefix, f".{prefix}"):  # a killed run's, and the atomic writes' inside them (never
            remove_abandoned(self.folder, abandoned, ".partial")  # a live run's: those are locked)
        suffix = ".nii.gz" if final.name.lower().endswith(".gz") else final.suffix
        handle, name = tempfile.mkstemp(prefix=prefix, suffix=f".partial{suffix}", dir=self.folder)
        os.close(handle)
        temporary = Path(name)
        self.made.append(temporary)
        self.locks.append(hold_file(temporary))
        writer(temporary)
        self.locks.append(hold_file(temporary))  # the writer may have replaced the file (an atomic write)
        return temporary

    def __enter__(self) -> _Temporaries:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for name in self.made:
            name.unlink(missing_ok=True)
        for lock in self.locks:
            os.close(lock)
