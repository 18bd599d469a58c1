"""The source DICOM series of a native-space label map, and where each of its images lies on the NIfTI grid.

A label map on an exam's native grid (what ``btk native`` and ``btk run`` write) is stored in NIfTI's RAS+
world coordinates, its voxels in whatever order the converter chose; the source series is a stack of 2-D images
in DICOM's LPS+ patient coordinates, each placed by its Image Position and Orientation. :func:`slice_plan`
finds, for every image of the series, the voxels of the label map under its pixels, and refuses any series whose
pixels do not fall exactly on the map's voxels (another series, another grid, a resampled volume).

Reading the headers registers the patient identifiers with :data:`btk.deid.guard`, as every DICOM reader of
btk does: they may go into a DICOM object written back for the same study, never into a message or a log.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from btk.deid import guard, identifiers_of
from btk.errors import InputError, MissingFileError
from btk.preprocess.dicom_headers import is_dicom_file

#: How far (in voxels) a pixel centre may lie from a voxel centre and still be that voxel (scanners round positions).
GRID_TOLERANCE = 0.05
#: The attributes every source image must have to be placed in space.
_PLACEMENT = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns")


@dataclass(frozen=True)
class SourceSeries:
    """The images of one DICOM series, read without their pixel data.

    Attributes:
        datasets: The images' headers (pydicom datasets), in the order of ``files``.
        files: The image files.
    """

    datasets: tuple[Any, ...]
    files: tuple[Path, ...]


@dataclass(frozen=True)
class SlicePlan:
    """Where the images of a series lie on a label map's voxel grid.

    Attributes:
        order: Index into the series' images of each frame, in frame order (the map's slice order).
        indices: Per frame, the voxel indices (3 arrays of shape rows x columns) under its pixels.
    """

    order: tuple[int, ...]
    indices: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]

    def frames(self, label_map: np.ndarray) -> np.ndarray:
        """The label map as the series' frames: an array (frames, rows, columns)."""
        return np.stack([label_map[index] for index in self.indices])


def read_source_series(paths: Sequence[Path] | Path) -> SourceSeries:
    """Read the headers of one single-frame DICOM image series (a folder of its files, or the files).

    Every header is read (and its identifiers guarded) before any problem is reported, so that a message
    naming a file cannot show an identifier that its folder's name holds.

    Raises:
        MissingFileError: A path does not exist.
        InputError: No DICOM files, a file that is not DICOM, images of several series, or images that
            cannot be placed in space (multi-frame, no position, orientation or spacing).
    """
    files = _files(paths)
    dicom = [path for path in files if is_dicom_file(path)]
    datasets = [_read_header(path) for path in dicom]
    for path in files:
        if path not in dicom:
            raise InputError(
                "not a DICOM file (no DICM marker)",
                path=path,
                hint="give a folder holding only the DICOM files of the source series",
            )
    for path, dataset in zip(dicom, datasets):
        _check_image(dataset, path)
    series = {str(d.get("SeriesInstanceUID", "")) for d in datasets}
    if len(series) > 1:
        raise InputError(
            f"the files belong to {len(series)} different series",
            path=paths if isinstance(paths, Path) else files[0].parent,
            hint="give the folder (or files) of the one series the label map was made from",
        )
    frames = {str(d.get("FrameOfReferenceUID", "")) for d in datasets}
    if len(frames) > 1 or not next(iter(frames)):
        raise InputError(
            "the images have no single Frame of Reference UID",
            path=files[0].parent,
            hint="give a series whose images share a Frame of Reference UID",
        )
    return SourceSeries(tuple(datasets), tuple(files))


def _files(paths: Sequence[Path] | Path) -> list[Path]:
    """The files given, or the files of a folder (any nesting)."""
    given = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    files: list[Path] = []
    for path in given:
        if not path.exists():
            raise MissingFileError("not found", path=path, hint="give the folder of the source DICOM series")
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    if not files:
        raise InputError("no files in the source series folder", path=given[0])
    return files


def _read_header(path: Path) -> Any:
    """One file's header (no pixel data), its identifiers registered with the guard."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings():  # pydicom warns about every oddity; unreadable files are reported
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError, AttributeError) as error:
        raise InputError(
            f"cannot read the DICOM header ({guard.redact(str(error))})",
            path=path,
            hint="give the files of the source series as the scanner or PACS exported them",
        ) from None
    guard.register(identifiers_of(dataset))
    return dataset


def _check_image(dataset: Any, path: Path) -> None:
    """A single-frame image with what it takes to place its pixels in space."""
    missing = [name for name in _PLACEMENT if name not in dataset]
    if missing:
        raise InputError(
            f"the DICOM image has no {', '.join(missing)}: it cannot be placed in space",
            path=path,
            hint="give the series of cross-sectional images (MR, CT) the label map was made from",
        )
    if int(dataset.get("NumberOfFrames", 1) or 1) != 1:
        raise InputError(
            "a multi-frame DICOM image: only series of single-frame images are supported",
            path=path,
            hint="give the classic (one file per slice) export of the series",
        )


def slice_plan(series: SourceSeries, shape: Sequence[int], affine: np.ndarray) -> SlicePlan:
    """Where each image of ``series`` lies on the grid of a label map of ``shape`` and NIfTI ``affine``.

    Every pixel centre of every image must be a voxel centre of the grid, each image must be a whole slice of
    it, and every slice of the grid must be one image of the series (neither missing nor repeated).

    Raises:
        InputError: The series does not match the grid (with what differs).
    """
    shape = tuple(int(n) for n in shape)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine, dtype=float)  # NIfTI RAS+ -> DICOM LPS+
    to_voxel = np.linalg.inv(lps)
    order: list[tuple[int, int]] = []
    indices = []
    slice_axis: int | None = None
    for number, dataset in enumerate(series.datasets):
        origin = to_voxel @ np.array([*map(float, dataset.ImagePositionPatient), 1.0])
        orientation = np.array([float(v) for v in dataset.ImageOrientationPatient])
        row_spacing, column_spacing = (float(v) for v in dataset.PixelSpacing)
        along_row = to_voxel[:3, :3] @ (orientation[:3] * column_spacing)  # one column further
        along_column = to_voxel[:3, :3] @ (orientation[3:] * row_spacing)  # one row further
        column_axis, row_axis = (
            _unit_axis(along_row, series.files[number]),
            _unit_axis(along_column, series.files[number]),
        )
        axis = ({0, 1, 2} - {column_axis, row_axis}).pop() if column_axis != row_axis else None
        if axis is None or (slice_axis is not None and axis != slice_axis):
            raise _mismatch(series.files[number], "its pixel rows and columns do not run along the grid's axes")
        slice_axis = axis
        if np.abs(origin[:3] - np.round(origin[:3])).max() > GRID_TOLERANCE:
            raise _mismatch(series.files[number], "its first pixel is not on a voxel of the grid")
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        start = np.round(origin[:3]).astype(int)
        r, c = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
        voxel = [
            start[i] + np.rint(along_row[i]).astype(int) * c + np.rint(along_column[i]).astype(int) * r
            for i in range(3)
        ]
        if any(v.min() < 0 or v.max() >= shape[i] for i, v in enumerate(voxel)):
            raise _mismatch(series.files[number], f"its {rows} x {columns} pixels reach outside the grid {shape}")
        if rows * columns != shape[column_axis] * shape[row_axis]:
            raise _mismatch(series.files[number], f"its {rows} x {columns} pixels do not cover a slice of {shape}")
        order.append((int(start[axis]), number))
        indices.append(tuple(voxel))
    assert slice_axis is not None  # read_source_series never returns an empty series
    positions = sorted(position for position, _ in order)
    if positions != list(range(shape[slice_axis])):
        raise _mismatch(
            series.files[0].parent,
            f"its {len(positions)} images are not the grid's {shape[slice_axis]} slices, one each",
        )
    ranked = sorted(range(len(order)), key=lambda i: order[i][0])
    return SlicePlan(tuple(order[i][1] for i in ranked), tuple(indices[i] for i in ranked))


def _unit_axis(step: np.ndarray, path: Path) -> int:
    """The grid axis a one-pixel step moves along by exactly one voxel."""
    axis = int(np.argmax(np.abs(step)))
    expected = np.zeros(3)
    expected[axis] = np.sign(step[axis])
    if np.abs(step - expected).max() > GRID_TOLERANCE:
        raise _mismatch(path, "its pixels are not the grid's voxels (another spacing or orientation)")
    return axis


def _mismatch(path: Path, what: str) -> InputError:
    return InputError(
        f"the DICOM series does not match the label map's grid: {what}",
        path=path,
        hint="give the source series the label map is on (btk native writes the exam's T1 grid)",
    )
