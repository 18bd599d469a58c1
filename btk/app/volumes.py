"""The images and segmentations the viewer shows for one study, by key; the client never names a file path.

Keys: ``brats/<modality>`` and ``native/<modality>`` (the four images in BraTS and in native space),
``consensus`` and ``native/consensus`` (the fused segmentation), ``candidate/<name>`` (an imported or an
algorithm's segmentation, BraTS space) and ``disagreement/<name>`` (where that candidate differs from the
consensus, computed on request: see :data:`DISAGREEMENT_LABELS`).
"""

from __future__ import annotations

import gzip
import io
import threading
from collections import OrderedDict
from pathlib import Path

import nibabel as nib
import numpy as np

from btk.errors import MissingFileError
from btk.io import is_nifti, load_label_map
from btk.modalities import MODALITIES
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


class DisagreementMaps:
    """Disagreement maps (gzipped NIfTI bytes) computed on request and kept for the few most recent studies."""

    def __init__(self, keep: int = 8):
        self.keep = keep
        self._cache: OrderedDict[tuple[Path, Path, float, float], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, candidate: Path, consensus: Path) -> bytes:
        """The map of ``candidate`` against ``consensus`` as a ``.nii.gz`` file's bytes."""
        try:
            key = (candidate, consensus, candidate.stat().st_mtime, consensus.stat().st_mtime)
        except OSError:
            raise MissingFileError("the segmentation is gone", path=candidate) from None
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        data = disagreement_nifti(candidate, consensus)
        with self._lock:
            self._cache[key] = data
            while len(self._cache) > self.keep:
                self._cache.popitem(last=False)
        return data


def disagreement_nifti(candidate: Path, consensus: Path) -> bytes:
    """Where ``candidate`` differs from ``consensus`` (both on one grid), as gzipped NIfTI bytes.

    Values (:data:`DISAGREEMENT_LABELS`): 1 tumour only in the candidate, 2 tumour only in the consensus,
    3 tumour in both with another label; 0 where they agree.
    """
    image, ours = load_label_map(candidate, copy=False)
    _, theirs = load_label_map(consensus, copy=False)
    if ours.shape != theirs.shape:
        raise MissingFileError("the candidate is not on the consensus's grid", path=candidate)
    result = np.zeros(ours.shape, dtype=np.uint8)
    result[(ours > 0) & (theirs == 0)] = 1
    result[(ours == 0) & (theirs > 0)] = 2
    result[(ours > 0) & (theirs > 0) & (ours != theirs)] = 3
    header = image.header.copy()
    header.set_data_dtype(np.uint8)
    out = nib.Nifti1Image(result, image.affine, header)
    out.header["scl_slope"], out.header["scl_inter"] = 1, 0
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1, mtime=0) as stream:
        stream.write(out.to_bytes())
    return buffer.getvalue()
