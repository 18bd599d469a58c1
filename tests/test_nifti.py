"""btk's own NIfTI reader and label-map writer (:mod:`btk.nifti`) against nibabel, on real and constructed files.

nibabel is the reference: every file is read by both (voxels, shape and affine must agree) and every label
map is written by both (the bytes must be identical), so ``btk fuse`` writes what it wrote through nibabel.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from btk.errors import InputError
from btk.io import NIFTI_STAMP, as_label_array, read_label_map, save_label_map, scrub_free_text, written_by_btk
from btk.nifti import NiftiHeader, read_nifti, read_nifti_header

ROOT = Path(__file__).resolve().parents[1]
CANDIDATE = ROOT / "examples" / "candidates" / "TCGA-FG-6692" / "isen-20.nii.gz"
REAL_FILES = sorted((ROOT / "tests" / "data").rglob("*.nii.gz")) + sorted((ROOT / "examples").rglob("*.nii.gz"))


def nibabel_label_map(labels: np.ndarray, reference: nib.Nifti1Image) -> bytes:
    """A label map written the way btk wrote it through nibabel (the reference for btk's own writer)."""
    header = reference.header.copy()
    header.set_data_dtype(np.uint8)
    header["scl_slope"], header["scl_inter"] = 1, 0
    image = type(reference)(np.asarray(labels, dtype=np.uint8), reference.affine, header)
    image.header["cal_min"], image.header["cal_max"] = 0, int(np.max(labels, initial=0))
    scrub_free_text(image.header, NIFTI_STAMP.encode())
    return image.to_bytes()


def _rotated(affine: np.ndarray) -> np.ndarray:
    angle = 0.3
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    rotated = affine.copy()
    rotated[:3, :3] = rotation @ np.diag([1.2, 0.9, -2.0])
    return rotated


def _variants(folder: Path) -> Iterator[tuple[str, Path, np.ndarray]]:
    """Files of every storage btk may meet, each with a label map on its grid."""
    image = nib.load(str(CANDIDATE))
    labels = np.asanyarray(image.dataobj)

    def save(name: str, made: nib.Nifti1Image, configure: Callable[[nib.Nifti1Image], None] | None = None) -> Path:
        if configure:
            configure(made)
        nib.save(made, str(folder / name))
        return folder / name

    def codes(sform: int, qform: int) -> Callable[[nib.Nifti1Image], None]:
        def configure(made: nib.Nifti1Image) -> None:
            made.set_sform(made.affine if sform else None, sform)
            made.set_qform(made.affine if qform else None, qform)

        return configure

    yield "real", CANDIDATE, labels
    big = nib.Nifti1Image(labels, image.affine, image.header.as_byteswapped(">"))
    yield "big-endian", save("big.nii", big), labels
    yield "nifti2", save("two.nii.gz", nib.Nifti2Image(labels, image.affine)), labels
    yield "4d-one-volume", save("four.nii.gz", nib.Nifti1Image(labels[..., None], image.affine, image.header)), labels
    yield "qform-only", save("q.nii.gz", nib.Nifti1Image(labels, image.affine), codes(0, 1)), labels
    yield "no-codes", save("none.nii.gz", nib.Nifti1Image(labels, image.affine), codes(0, 0)), labels
    yield "rotated-qform", save("rot.nii.gz", nib.Nifti1Image(labels, _rotated(image.affine)), codes(0, 1)), labels
    yield "float32", save("float.nii.gz", nib.Nifti1Image(labels.astype(np.float32), image.affine)), labels
    scaled = nib.Nifti1Image(labels.astype(np.int16), image.affine)
    scaled.header.set_slope_inter(1.0, 1.0)  # read: the labels plus one
    yield "scaled-int16", save("scaled.nii.gz", scaled), labels


@pytest.mark.parametrize("path", REAL_FILES, ids=[path.name for path in REAL_FILES])
def test_every_shipped_image_reads_as_nibabel_reads_it(path: Path):
    image = nib.load(str(path))
    header, voxels = read_nifti(path)
    assert header.shape == image.shape
    assert np.array_equal(voxels, np.asanyarray(image.dataobj))
    assert np.allclose(header.affine, image.affine, atol=1e-6)
    assert header.zooms == pytest.approx(image.header.get_zooms()[: len(image.shape)])


def test_every_storage_reads_and_writes_as_nibabel_does(tmp_path: Path):
    seen = []
    for name, path, labels in _variants(tmp_path):
        image = nib.load(str(path))
        header, voxels = read_label_map(path)
        assert np.array_equal(voxels, as_label_array(np.asanyarray(image.dataobj))) and voxels.dtype == np.uint8, name
        assert np.allclose(header.affine, image.affine, atol=1e-6), name
        fused = (labels > 1).astype(np.uint8) * 2  # another label map on the same grid
        expected = nibabel_label_map(fused, image)
        assert header.label_map_file(fused, NIFTI_STAMP.encode()) == expected, name
        assert NiftiHeader.of_image(image).label_map_file(fused, NIFTI_STAMP.encode()) == expected, name
        output = tmp_path / f"out-{name}.nii.gz"
        save_label_map(fused, header, output)
        assert gzip.decompress(output.read_bytes()) == expected, name
        assert written_by_btk(output) and read_nifti_header(output).description == NIFTI_STAMP.encode()
        seen.append(name)
    assert len(seen) == 9


def test_a_label_map_of_bare_arrays_gets_the_unit_grid():
    labels = np.ones((4, 5, 6), np.uint8)
    header = NiftiHeader.unit_grid(labels.shape)
    expected = nibabel_label_map(labels, nib.Nifti1Image(np.zeros(labels.shape, np.uint8), np.eye(4)))
    assert header.label_map_file(labels, NIFTI_STAMP.encode()) == expected
    assert np.array_equal(header.affine, np.eye(4))


def _damaged(path: Path, raw: bytes) -> Path:
    path.write_bytes(gzip.compress(raw))
    return path


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda raw: raw[:200], "ends inside its header"),
        (lambda raw: raw[: len(raw) // 2], "ends before its voxel data"),
        (lambda raw: raw[:344] + b"ni1\0" + raw[348:], "not a single-file NIfTI"),
        (lambda raw: b"\0" * 4 + raw[4:], "header size is neither"),
        (lambda raw: raw[:70] + np.int16(32).tobytes() + raw[72:], "not a real number type"),
        (lambda raw: raw[:40] + np.int16(9).tobytes() + raw[42:], "dimensions"),
    ],
    ids=["short-header", "truncated", "pair-magic", "not-nifti", "complex", "bad-dims"],
)
def test_a_damaged_file_is_one_clear_input_error(tmp_path: Path, damage, message: str):
    raw = gzip.decompress(CANDIDATE.read_bytes())
    path = _damaged(tmp_path / "damaged.nii.gz", damage(raw))
    with pytest.raises(InputError, match=message) as raised:
        read_label_map(path)
    assert raised.value.path == path and "corrupt or truncated" in str(raised.value)
    assert not written_by_btk(path)
