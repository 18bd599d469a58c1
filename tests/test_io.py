"""Reading NIfTI files: the zero-copy path gives what nibabel gives, and broken files fail clearly."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from btk.errors import BtkError
from btk.io import as_label_array, load_nifti, save_nifti
from tests.support.data import DATA


def _written(tmp_path: Path, name: str, data: np.ndarray, slope: float = 1.0, inter: float = 0.0) -> Path:
    image = nib.Nifti1Image(data, np.diag([1.0, 1.2, 3.0, 1.0]))
    image.header.set_slope_inter(slope, inter)
    path = tmp_path / name
    nib.save(image, str(path))
    return path


@pytest.mark.parametrize("name", ["plain.nii", "packed.nii.gz"])
@pytest.mark.parametrize("slope, inter", [(1.0, 0.0), (0.5, 10.0)])
def test_view_and_copy_equal_nibabel(tmp_path: Path, name: str, slope: float, inter: float) -> None:
    data = np.random.default_rng(0).integers(0, 300, size=(7, 5, 3)).astype(np.int16)
    path = _written(tmp_path, name, data, slope, inter)
    expected = np.asanyarray(nib.load(str(path)).dataobj)
    for copy in (True, False):
        _, loaded = load_nifti(path, copy=copy)
        assert loaded.dtype == expected.dtype and np.array_equal(loaded, expected)
    _, copied = load_nifti(path)
    assert copied.flags.writeable


def test_view_of_a_file_whose_header_says_offset_zero() -> None:
    # The shipped candidates store vox_offset 0; nibabel reads their voxels from byte 352 all the same.
    path = next((DATA / "fusion" / "TCGA-FG-6692" / "candidates").glob("*.nii.gz"))
    assert nib.load(str(path)).header["vox_offset"] == 0
    _, view = load_nifti(path, copy=False)
    assert np.array_equal(view, np.asanyarray(nib.load(str(path)).dataobj))


@pytest.mark.parametrize("copy", [True, False])
def test_truncated_file_is_a_clear_error(tmp_path: Path, copy: bool) -> None:
    path = _written(tmp_path, "whole.nii", np.ones((20, 20, 20), dtype=np.uint8))
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(gzip.compress(path.read_bytes()[:-100]))
    with pytest.raises(BtkError, match="corrupt or truncated"):
        load_nifti(truncated, copy=copy)


def test_saved_files_round_trip(tmp_path: Path) -> None:
    data = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    image = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]))
    for name in ("a.nii", "a.nii.gz"):
        save_nifti(image, tmp_path / name)
        back = nib.load(str(tmp_path / name))
        assert np.array_equal(back.get_fdata(), data) and np.allclose(back.affine, image.affine)
    assert not list(tmp_path.glob(".*partial*"))


def test_btk_recognises_its_own_nifti_files_and_nothing_else(tmp_path: Path) -> None:
    from btk.io import written_by_btk

    image = nib.Nifti1Image(np.zeros((3, 3, 3), np.uint8), np.eye(4))
    image.header["descrip"] = b"patient Jane Doe, scanned 2001"  # free text of an input's header
    save_nifti(image, tmp_path / "ours.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3), np.uint8), np.eye(4)), str(tmp_path / "theirs.nii.gz"))
    (tmp_path / "link.nii.gz").symlink_to(tmp_path / "ours.nii.gz")
    assert written_by_btk(tmp_path / "ours.nii.gz")
    assert b"Jane" not in bytes(nib.load(str(tmp_path / "ours.nii.gz")).header["descrip"])
    assert not written_by_btk(tmp_path / "theirs.nii.gz")
    assert not written_by_btk(tmp_path / "link.nii.gz")  # never replaced through a link
    assert not written_by_btk(tmp_path)


def test_an_output_hard_linked_to_an_input_is_refused(tmp_path: Path) -> None:
    from btk.io import guard_output

    source = tmp_path / "in" / "seg.nii.gz"
    source.parent.mkdir()
    source.write_bytes(b"data")
    (tmp_path / "out.nii.gz").hardlink_to(source)
    with pytest.raises(BtkError, match="one of the command's inputs"):
        guard_output(tmp_path / "out.nii.gz", [source], force=True)
    guard_output(tmp_path / "new.nii.gz", [source])  # a new name beside it is fine


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.int64, np.uint16, ">f4", bool, np.uint8])
def test_label_arrays_of_every_numeric_type_become_the_same_uint8_labels(dtype) -> None:
    labels = np.zeros((6, 5, 4), np.uint8)
    labels[1:3, 1:4, 1:3] = [[[1, 2]], [[4, 255]]] if dtype is not bool else 1
    converted = as_label_array(labels.astype(dtype))
    assert converted.dtype == np.uint8 and np.array_equal(converted, labels)


@pytest.mark.parametrize(
    "value, dtype, message",
    [
        (np.nan, np.float32, "NaN or infinite"),
        (np.inf, np.float64, "NaN or infinite"),
        (-np.inf, np.float32, "NaN or infinite"),
        (2.5, np.float32, "non-integer values"),
        (1.0000001, np.float64, "non-integer values"),
        (256.0, np.float32, "between 0 and 255, found 0.0 to 256.0"),
        (-1.0, np.float32, "between 0 and 255, found -1.0 to 0.0"),
        (300, np.int16, "between 0 and 255, found 0 to 300"),
        (-1, np.int64, "between 0 and 255, found -1 to 0"),
        (256, np.uint16, "between 0 and 255, found 0 to 256"),
    ],
)
def test_a_value_no_label_map_holds_is_named(value, dtype, message: str) -> None:
    # The fast check (one cast, one comparison) refuses every one of them; the message says which it is.
    data = np.zeros((6, 5, 4), dtype)
    data[2, 2, 2] = value
    with pytest.raises(BtkError, match=message):
        as_label_array(data, source="candidate.nii.gz")
