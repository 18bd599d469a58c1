"""Loading and checking the candidate segmentations and their weights."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from btk.errors import InputError
from btk.io import as_label_array, is_nifti, read_label_map, sha256, strip_nifti_suffix
from btk.nifti import NiftiHeader

if TYPE_CHECKING:  # candidate files are read without nibabel (btk.nifti): `btk fuse` starts faster
    import nibabel as nib

#: What a candidate may be: a NIfTI file, a nibabel image or a label array.
CandidateLike = Union[str, Path, "nib.Nifti1Image", np.ndarray]


@dataclass
class Candidates:
    """Candidate label maps on one grid, stacked along the first axis, with where they came from."""

    stack: np.ndarray
    """``uint8`` array of shape ``(candidates, x, y, z)``."""
    names: list[str]
    paths: list[Path | None]
    reference: NiftiHeader | None
    """The first candidate's header (files and images): its geometry and header are given to the fused result."""
    checksums: list[str | None] = field(default_factory=list)
    """SHA-256 of each candidate file (None for images and arrays given in memory)."""

    def __len__(self) -> int:
        return len(self.stack)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.stack.shape[1:]

    @property
    def arrays(self) -> list[np.ndarray]:
        """One label map per candidate (views into :attr:`stack`)."""
        return list(self.stack)

    def describe(self) -> list[dict[str, object]]:
        """Name, path and SHA-256 of each candidate, for provenance."""
        checksums = self.checksums or [sha256(path) if path else None for path in self.paths]
        return [
            {"name": name, "path": str(path) if path else None, "sha256": checksum}
            for name, path, checksum in zip(self.names, self.paths, checksums)
        ]


def expand_candidate_paths(items: Sequence[CandidateLike]) -> list[CandidateLike]:
    """Replace each folder in ``items`` by the NIfTI files inside it, sorted by name."""
    expanded: list[CandidateLike] = []
    for item in items:
        if isinstance(item, (str, Path)) and Path(item).is_dir():
            files = sorted(p for p in Path(item).iterdir() if p.is_file() and is_nifti(p))
            if not files:
                raise InputError("the folder holds no NIfTI files (.nii or .nii.gz)", path=item)
            expanded.extend(files)
        else:
            expanded.append(item)
    return expanded


def load_candidates(
    items: Sequence[CandidateLike], names: Sequence[str] | None = None, allow_identical: bool = False
) -> Candidates:
    """Read and check candidates: at least two, all 3-D label maps with the same shape and affine, none
    given twice.

    The same file given twice (also as a file and through its folder, or through a link) is refused, and so
    are two files with the same content unless ``allow_identical`` (for callers who know the files come from
    different algorithms): either would count one segmentation twice. All-background candidates may be
    identical (algorithms that found no tumour write the same file).
    """
    items = expand_candidate_paths(list(items))
    if len(items) < 2:
        raise InputError(
            f"fusion needs at least 2 candidate segmentations, got {len(items)}",
            hint="pass two or more label maps (files or a folder holding them)",
        )
    if names is not None and len(names) != len(items):
        raise InputError(f"got {len(names)} names for {len(items)} candidates")
    headers: list[NiftiHeader | None] = [None] * len(items)
    paths = [Path(item) if isinstance(item, (str, Path)) else None for item in items]
    _check_given_once(paths)
    checksums: list[str | None] = [None] * len(items)
    default_names = [strip_nifti_suffix(path) if path else f"candidate{index}" for index, path in enumerate(paths)]
    candidate_names = list(names) if names is not None else _unique(default_names)

    def read(index: int) -> np.ndarray:
        item = items[index]
        if isinstance(item, (str, Path)):
            headers[index], array = read_label_map(item)  # only read, then copied into the stack
            checksums[index] = sha256(item)
            return array
        if isinstance(item, np.ndarray):
            return as_label_array(item, f"candidate {index}")
        if _is_nibabel_image(item):
            headers[index] = NiftiHeader.of_image(item)
            return as_label_array(np.asanyarray(item.dataobj), f"candidate {index}")
        raise InputError(
            f"candidate {index} is a {type(item).__name__}: expected a NIfTI file, a nibabel image or an array"
        )

    first = read(0)
    # Each candidate is stored in Fortran order, as NIfTI files hold voxels: copies in and out stay sequential.
    stack = np.empty((len(items), *first.shape[::-1]), dtype=np.uint8).transpose(0, 3, 2, 1)
    stack[0] = first
    mismatched: dict[int, tuple[int, ...]] = {}

    def read_into_stack(index: int) -> None:
        # Each file is decoded and copied into its slot in a worker thread (zlib and numpy release the GIL),
        # so the candidates are never held twice.
        array = read(index)
        if array.shape == first.shape:
            stack[index] = array
        else:
            mismatched[index] = array.shape

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(read_into_stack, range(1, len(items))))
    _check_same_grid(first.shape, mismatched, headers, candidate_names, paths)
    if not allow_identical:
        empty = [not stack[index].any() for index in range(len(items))]
        _check_distinct_content(paths, checksums, empty)
    return Candidates(stack, candidate_names, paths, next((h for h in headers if h is not None), None), checksums)


def _is_nibabel_image(item: Any) -> bool:
    """Whether ``item`` is a nibabel NIfTI image (if nibabel was never imported, it cannot be one)."""
    nibabel = sys.modules.get("nibabel")
    return nibabel is not None and isinstance(item, nibabel.Nifti1Image)


def _check_given_once(paths: list[Path | None]) -> None:
    """Refuse a candidate file given twice: by the same path, through its folder, or through a link."""
    seen: dict[Path, Path] = {}
    for path in paths:
        if path is None:
            continue
        resolved = path.resolve()
        if resolved in seen:
            first = seen[resolved]
            where = "twice" if first == path else f"twice ({first} and {path} are the same file)"
            raise InputError(
                f"the candidate is given {where}: it would be counted twice",
                path=path,
                hint="pass each candidate once (a folder already includes every file in it)",
            )
        seen[resolved] = path


def _check_distinct_content(paths: list[Path | None], checksums: list[str | None], empty: list[bool]) -> None:
    """Refuse two candidate files with the same content (a copy of a candidate counts it twice).

    All-background candidates are exempt: several algorithms finding no tumour write identical files.
    """
    seen: dict[str, Path] = {}
    for path, checksum, is_empty in zip(paths, checksums, empty):
        if path is None or checksum is None or is_empty:
            continue
        if checksum in seen:
            raise InputError(
                f"the candidate has the same content as {seen[checksum]} (SHA-256 {checksum[:12]}...): "
                "one segmentation would be counted twice",
                path=path,
                hint="pass each candidate once; remove the copy",
            )
        seen[checksum] = path


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return unique


def _check_same_grid(
    first_shape: tuple[int, ...],
    mismatched: dict[int, tuple[int, ...]],
    headers: list[NiftiHeader | None],
    names: list[str],
    paths: list[Path | None],
) -> None:
    first_affine = next((header.affine for header in headers if header is not None), None)
    for index, (image, name, path) in enumerate(zip(headers, names, paths)):
        label = "" if path is not None else f"{name}: "
        if index in mismatched:
            raise InputError(
                f"{label}shape {mismatched[index]} differs from the first candidate's {first_shape} ({names[0]})",
                path=path,
                hint="all candidates must be on the same grid; resample them first",
            )
        if image is not None and first_affine is not None and not np.allclose(image.affine, first_affine, atol=1e-4):
            raise InputError(
                f"{label}the affine (voxel-to-world mapping) differs from the first candidate's ({names[0]}):\n"
                f"{np.array2string(image.affine, precision=4)}\nversus\n{np.array2string(first_affine, precision=4)}",
                path=path,
                hint="all candidates must be on the same grid; resample them first",
            )


def normalise_weights(weights: Sequence[float] | Mapping[str, float] | None, names: Sequence[str]) -> np.ndarray:
    """Check per-candidate weights (a list in candidate order or a name -> weight mapping); default all 1."""
    if weights is None:
        return np.ones(len(names))
    if isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise InputError(
                f"weights name unknown candidates: {', '.join(unknown)}", hint=f"candidates: {', '.join(names)}"
            )
        values = [float(weights.get(name, 1.0)) for name in names]
    else:
        values = [float(w) for w in weights]
    if len(values) != len(names):
        raise InputError(f"got {len(values)} weights for {len(names)} candidates", hint="give one weight per candidate")
    array = np.asarray(values, dtype=np.float64)
    if not np.isfinite(array).all() or (array < 0).any():
        raise InputError(f"weights must be finite and not negative, got {values}")
    if not (array > 0).any():
        raise InputError("at least one weight must be positive")
    return array
