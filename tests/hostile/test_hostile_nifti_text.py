"""Hostile NIfTI headers: identifiers in every free-text field and in header extensions of an input never reach
an output. Every NIfTI file btk writes goes through :func:`btk.io.save_nifti`, which empties the text fields
and drops the extensions; these tests check that writer and a whole command built on it."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from btk.io import NIFTI_STAMP, holds_free_text, load_nifti, save_float_image, save_label_map
from tests.support.hostile import ROOT, run_btk

REAL = ROOT / "tests" / "data" / "fusion" / "TCGA-FG-6692" / "candidates"

#: What a converter or another tool may leave in a header: a name, a patient ID, a birth date.
IDENTIFIERS = ("DOE^JANE", "PID7734219", "19480315")


def leaky_copy(source: Path, target: Path) -> Path:
    """``source`` with an identifier in each free-text field and two header extensions holding all of them."""
    image = nib.load(str(source))
    header = image.header.copy()
    header["descrip"] = f"patient {IDENTIFIERS[0]}".encode()
    header["aux_file"] = IDENTIFIERS[1].encode()
    header["intent_name"] = IDENTIFIERS[2].encode()
    header["db_name"] = IDENTIFIERS[0].encode()
    header["data_type"] = IDENTIFIERS[2].encode()
    text = " ".join(IDENTIFIERS).encode()
    header.extensions.append(nib.nifti1.Nifti1Extension(6, text))  # a comment
    header.extensions.append(nib.nifti1.Nifti1Extension(4, b"<AFNI>" + text + b"</AFNI>"))
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj), image.affine, header), str(target))
    return target


def assert_no_identifier(path: Path) -> None:
    """No identifier anywhere in the file's (uncompressed) bytes."""
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    for identifier in IDENTIFIERS:
        assert identifier.encode() not in raw, f"{identifier} reached {path.name}"


def test_the_leaky_input_really_carries_the_identifiers(tmp_path: Path):
    leaky = leaky_copy(REAL / "isen-20.nii.gz", tmp_path / "leaky.nii.gz")
    raw = gzip.decompress(leaky.read_bytes())
    assert all(identifier.encode() in raw for identifier in IDENTIFIERS)
    assert holds_free_text(nib.load(str(leaky)).header)
    assert not holds_free_text(nib.Nifti1Image(np.zeros((2, 2, 2), np.uint8), np.eye(4)).header)


@pytest.mark.parametrize("writer", [save_label_map, save_float_image], ids=["label-map", "float-image"])
def test_btk_writers_keep_the_geometry_and_drop_the_text(tmp_path: Path, writer):
    reference, data = load_nifti(leaky_copy(REAL / "scan-20.nii.gz", tmp_path / "leaky.nii.gz"))
    output = tmp_path / "out.nii.gz"
    writer(data, reference, output)
    assert_no_identifier(output)
    written = nib.load(str(output))
    assert bytes(written.header["descrip"]).rstrip(b"\0") == NIFTI_STAMP.encode()
    assert not written.header.extensions
    assert np.array_equal(written.affine, reference.affine)
    assert int(written.header["sform_code"]) == int(reference.header["sform_code"])
    assert np.array_equal(np.asanyarray(written.dataobj), data)


def test_identifiers_in_candidate_headers_reach_no_output_of_fuse(tmp_path: Path):
    candidates = [leaky_copy(REAL / name, tmp_path / name) for name in ("isen-20.nii.gz", "scan-20.nii.gz")]
    candidates.append(REAL / "sanet0-20.nii.gz")
    output = tmp_path / "out" / "fused.nii.gz"
    result = run_btk("fuse", *candidates, "-o", output, "--method", "mav")
    assert result.code == 0, result.output
    written = sorted(output.parent.iterdir())
    assert [path.name for path in written] == ["fused.json", "fused.nii.gz", "fused_agreement.json"]
    for path in written:
        assert_no_identifier(path)
    for identifier in IDENTIFIERS:
        assert identifier not in result.output
