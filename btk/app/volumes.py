"""The images and segmentations the viewer shows for one study, by key; the client never names a file path.

Keys: ``brats/<modality>`` and ``native/<modality>`` (the four images in BraTS and in native space),
``consensus`` and ``native/consensus`` (the fused segmentation), ``candidate/<name>`` (an imported or an
algorithm's segmentation, BraTS space) and ``disagreement/<name>`` (where that candidate differs from the
consensus, computed on request: see :data:`DISAGREEMENT_LABELS`). What the viewer draws is made from them by
:class:`ViewerVolumes`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from btk.arrays import bounding_box
from btk.errors import MissingFileError
from btk.io import is_nifti, load_nifti, read_label_map
from btk.modalities import MODALITIES
from btk.nifti import NiftiHeader
from btk.pipeline.discovery import nifti_modality
from btk.pipeline.markers import marker_outputs, read_marker
from btk.preprocess import PreprocessedExam
from btk.report.data import ExamReportData
from btk.report.exam import read_exam_report

#: Values of a disagreement map: what a candidate says where it differs from the consensus.
DISAGREEMENT_LABELS = {1: "tumour only in the candidate", 2: "tumour only in the consensus", 3: "another label"}


def study_volumes(folder: Path) -> dict[str, Path]:
    """Key -> file of every volume of a study's output folder that exists (finished stages only)."""
    volumes: dict[str, Path] = {}
    report = read_exam_report(folder / "report")
    for space in ("brats", "native"):
        for modality, path in _images(folder, space, report).items():
            volumes[f"{space}/{modality}"] = path
    for stage, key, output in (("fuse", "consensus", "fused"), ("native", "native/consensus", "native")):
        marker = read_marker(folder, stage)
        if marker is not None and output in marker["outputs"]:
            volumes[key] = marker_outputs(folder, marker)[output]
    segment = read_marker(folder, "segment")
    if segment is not None:
        for name, path in marker_outputs(folder, segment).items():
            if is_nifti(path):
                volumes[f"candidate/{name}"] = path
    return {key: path for key, path in volumes.items() if path.is_file()}


def _images(folder: Path, space: str, report: ExamReportData | None) -> dict[str, Path]:
    """The four modalities in one space: from the study's preprocessing, else from a preprocessed input, else
    (BraTS space only) from an input already on the BraTS grid."""
    preprocessed = folder / "preprocess"
    if read_marker(folder, "preprocess") is None:
        preprocessed = Path(report.preprocessed if report else "")
    if str(preprocessed) not in ("", ".") and PreprocessedExam.has_provenance(preprocessed):
        outputs = PreprocessedExam.read(preprocessed).outputs
        return {m: outputs[f"{space}/{m}"] for m in MODALITIES if f"{space}/{m}" in outputs}
    source = Path(report.source) if report and report.source else None
    if space == "brats" and source is not None and source.is_dir():
        found = {nifti_modality(path): path for path in sorted(source.iterdir()) if is_nifti(path)}
        return {m: found[m] for m in MODALITIES if m in found}
    return {}


def is_image_key(key: str) -> bool:
    """Whether a key names one of the four images (in BraTS or native space), not a segmentation."""
    space, _, modality = key.rpartition("/")
    return space in ("brats", "native") and modality in MODALITIES


class ViewerVolumes:
    """What the viewer draws, made from a study's files on request (uncompressed NIfTI bytes: the server is
    local, the browser has nothing to inflate) and kept for the most recent few.

    An image is cut to the box around its non-zero voxels and the labels of the study's segmentations on its
    grid: the black background around a skull-stripped brain, more than half of a BraTS image, would cost the
    viewer's WebGL (software rendering, without a GPU) a pass over each of its voxels. The world coordinates
    and the values stay as stored. A segmentation is drawn on its image's grid, so it is served on the grid of
    the cut image it goes with.
    """

    def __init__(self, keep: int = 16):
        self.keep = keep
        self._cache: OrderedDict[tuple, bytes] = OrderedDict()
        self._making: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()

    def image(self, path: Path, segmentations: Sequence[Path] = ()) -> bytes:
        """The image at ``path`` cut by :func:`cut_image` (around the labels of ``segmentations`` too)."""
        return self._cached(("image", *_versions(path, *segmentations)), lambda: cut_image(path, segmentations))

    def labels(
        self, grid: Path, segmentation: Path, consensus: Path | None = None, segmentations: Sequence[Path] = ()
    ) -> bytes:
        """The label map ``segmentation`` (with ``consensus``: its disagreement map, see :func:`disagreement`)
        on the grid of the image ``grid`` cut around ``segmentations`` (each voxel the label of the nearest
        voxel, 0 outside)."""
        sources = (segmentation,) if consensus is None else (segmentation, consensus)

        def make() -> bytes:
            header, labels = read_label_map(segmentation)
            if consensus is not None:
                _, theirs = read_label_map(consensus)
                if theirs.shape != labels.shape:
                    raise MissingFileError("the candidate is not on the consensus's grid", path=segmentation)
                labels = disagreement(labels, theirs)
            target = NiftiHeader.parse(self.image(grid, segmentations))
            placed = labels_on_grid(labels, header.affine, target.shape[:3], target.affine)
            return target.label_map_file(placed, b"btk viewer labels")

        return self._cached(("labels", *_versions(grid, *sources, *segmentations)), make)

    def _cached(self, key: tuple, make: Callable[[], bytes]) -> bytes:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            making = self._making.setdefault(key, threading.Lock())
        with making:  # a second request for the same volume waits for the first one's
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
            try:
                data = make()
            finally:
                with self._lock:
                    self._making.pop(key, None)
            with self._lock:
                self._cache[key] = data
                while len(self._cache) > self.keep:
                    self._cache.popitem(last=False)
        return data


def _versions(*paths: Path) -> tuple:
    """The files with their modification times (a cache key that a rewritten file invalidates)."""
    try:
        return tuple((path, path.stat().st_mtime) for path in paths)
    except OSError:
        raise MissingFileError("the volume is gone", path=paths[0]) from None


def cut_image(path: Path, segmentations: Sequence[Path] = ()) -> bytes:
    """The image at ``path`` cut to the box around its non-zero voxels and the labels of those ``segmentations``
    that lie on its grid (whole if there are none), as an uncompressed NIfTI file: values as stored, the affine
    moved so that every voxel keeps its world position."""
    image, data = load_nifti(path, copy=False)
    kept = data != 0
    while kept.ndim > 3:  # a 4-D image of one volume
        kept = kept.any(axis=-1)
    for segmentation in segmentations:
        header, labels = read_label_map(segmentation)
        if labels.shape == kept.shape and np.allclose(header.affine, image.affine, atol=1e-4):
            kept |= labels != 0
    box = bounding_box(kept)
    affine = image.affine.copy()
    affine[:3, 3] += image.affine[:3, :3] @ [axis.start for axis in box]
    header = image.header.copy()
    header.set_data_dtype(data.dtype)  # scaled data come as floats: stored so, unscaled
    cut = type(image)(np.ascontiguousarray(data[box]), affine, header)
    cut.header["scl_slope"], cut.header["scl_inter"] = 1, 0
    return cut.to_bytes()


def disagreement(candidate: np.ndarray, consensus: np.ndarray) -> np.ndarray:
    """Where ``candidate`` differs from ``consensus`` (label maps on one grid), as a label map of
    :data:`DISAGREEMENT_LABELS`: 1 tumour only in the candidate, 2 tumour only in the consensus, 3 tumour in
    both with another label; 0 where they agree."""
    result = np.zeros(candidate.shape, dtype=np.uint8)
    result[(candidate > 0) & (consensus == 0)] = 1
    result[(candidate == 0) & (consensus > 0)] = 2
    result[(candidate > 0) & (consensus > 0) & (candidate != consensus)] = 3
    return result


def labels_on_grid(labels: np.ndarray, affine: np.ndarray, shape: tuple[int, ...], target: np.ndarray) -> np.ndarray:
    """A label map (voxel-to-world ``affine``) on another grid (``shape``, ``target`` affine): each voxel the label
    of the nearest voxel of ``labels``, 0 outside it."""
    to_source = np.linalg.inv(affine) @ target
    i, j = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    plane = to_source[:3, :3] @ np.stack([i.ravel(), j.ravel(), np.zeros(i.size)]) + to_source[:3, 3:]
    bounds = np.array(labels.shape[:3])[:, None]
    result = np.zeros(shape[:3], dtype=np.uint8)
    for k in range(shape[2]):
        index = np.rint(plane + k * to_source[:3, 2:3]).astype(np.intp)
        inside = np.all((index >= 0) & (index < bounds), axis=0)
        values = np.zeros(i.size, dtype=np.uint8)
        values[inside] = labels[index[0, inside], index[1, inside], index[2, inside]]
        result[:, :, k] = values.reshape(shape[:2])
    return result
