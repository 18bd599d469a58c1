"""Each track's preprocessing, as the BraTS orchestrator does it: the space and the skull handling its algorithms
expect (meningioma radiotherapy: the T1c alone in native-t1c, defaced; paediatric: SRI24, defaced; adult glioma
2024+: MNI152; the rest: SRI24, skull-stripped), how ``btk run`` resolves them, and a whole run in native-t1c."""

from __future__ import annotations

import csv
import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from btk.errors import InputError
from btk.io import save_label_map
from btk.pipeline import PipelineOptions
from btk.segment.registry import load_registry
from btk.spaces import SPACES
from tests.support.hostile import run_btk
from tests.support.preprocess import raw_image

#: Track -> (space, mode), after brats 0.1.14's preprocess_for_challenge.
EXPECTED = {
    "glioma": ("brats-sri24", "skullstrip"),
    "glioma-post": ("brats-mni152", "skullstrip"),
    "ssa": ("brats-sri24", "skullstrip"),
    "pediatric": ("brats-sri24", "deface"),
    "meningioma": ("brats-sri24", "skullstrip"),
    "meningioma-rt": ("native-t1c", "deface"),
    "metastases": ("brats-sri24", "skullstrip"),
    "goat": ("brats-sri24", "skullstrip"),
    "missing-mri": ("brats-sri24", "skullstrip"),
}


def test_every_shipped_entry_expects_its_tracks_space_and_skull_handling():
    entries = load_registry().algorithms
    assert {entry.track_name for entry in entries} == set(EXPECTED)
    for entry in entries:
        assert (entry.atlas_space, entry.preprocess_mode) == EXPECTED[entry.track_name], entry.name
        if entry.track_name == "meningioma-rt":
            assert entry.modalities == ["t1c"]


@pytest.mark.parametrize(
    ("algorithm", "space", "mode"),
    [("brats24-menrt-3", "native-t1c", "deface"), ("brats24-ped-1", "brats-sri24", "deface")],
)
def test_a_run_preprocesses_the_way_its_algorithms_expect(tmp_path, algorithm, space, mode):
    options = PipelineOptions(tmp_path / "out", (algorithm,))
    assert (options.space.name, options.mode) == (space, mode)


def test_algorithms_expecting_different_preprocessing_are_refused_together(tmp_path):
    with pytest.raises(InputError, match="different atlas spaces"):
        PipelineOptions(tmp_path / "out", ("brats24-menrt-3", "brats23-gli-3"))
    with pytest.raises(InputError, match=r"different preprocessing modes \(deface: brats24-ped-1; skullstrip"):
        PipelineOptions(tmp_path / "out", ("brats24-ped-1", "brats23-men-1"))
    with pytest.raises(InputError, match="--atlas brats-sri24 was asked for"):
        PipelineOptions(tmp_path / "out", ("brats24-menrt-3",), atlas="brats-sri24")


def test_without_algorithms_the_space_gives_the_mode(tmp_path):
    assert PipelineOptions(tmp_path / "out", atlas="native-t1c").mode == "deface"
    assert PipelineOptions(tmp_path / "out").mode == "skullstrip"
    assert PipelineOptions(tmp_path / "out", atlas="brats-sri24", mode="deface").mode == "deface"
    with pytest.raises(InputError, match="unknown mode"):
        PipelineOptions(tmp_path / "out", mode="blur")


@pytest.mark.slow
def test_a_native_t1c_run_of_t1c_only_studies(tmp_path):
    """Two studies holding only a T1c: one with a candidate on the T1c's grid (preprocessed without registration,
    fused, mapped to native space and reported without FLAIR), one with a candidate on the SRI24 grid (refused,
    naming the grid it must lie on)."""
    t1c = nib.load(str(raw_image("t1c")))
    studies, candidates = tmp_path / "studies", tmp_path / "candidates"
    labels = np.zeros(t1c.shape, np.uint8)
    labels[100:130, 120:150, 12:16] = 1
    for name in ("good", "bad"):
        (studies / name).mkdir(parents=True)
        shutil.copyfile(raw_image("t1c"), studies / name / f"{name}_t1c.nii.gz")
        (candidates / name).mkdir(parents=True)
    save_label_map(labels, t1c, candidates / "good" / "seg.nii.gz")
    grid = SPACES["brats-sri24"].grid
    sri24 = nib.Nifti1Image(np.zeros(grid.shape, np.float32), grid.affine)
    save_label_map(np.ones(grid.shape, np.uint8), sri24, candidates / "bad" / "seg.nii.gz")
    out = tmp_path / "out"
    result = run_btk(
        "run", studies, "-o", out, "--candidates", candidates, "--atlas", "native-t1c", "--device", "cpu", "--fast",
        "--no-pdf",
    )  # fmt: skip
    assert result.code == 1, result.output  # one study failed
    rows = {row["study"]: row for row in csv.DictReader((out / "summary.csv").open())}
    assert rows["good"]["status"] == "ok", rows["good"]
    assert rows["bad"]["failed_stage"] == "segment"
    assert "the t1c's own grid" in rows["bad"]["reason"] and "brats-sri24 grid" in rows["bad"]["reason"]
    good = out / "good"
    provenance = json.loads((good / "preprocess" / "provenance.json").read_text())
    assert provenance["atlas"]["name"] == "native-t1c" and provenance["parameters"]["mode"] == "deface"
    assert set(provenance["outputs"]) == {"brats/t1c", "brats/mask", "qc/t1c"}
    native = nib.load(str(good / "native" / "good_fused_native.nii.gz"))
    assert np.array_equal(native.affine, t1c.affine) and np.array_equal(np.asanyarray(native.dataobj), labels)
    report = json.loads((good / "report" / "report.json").read_text())
    assert report["figures"] == ["t1c"]
    assert (good / "report" / "t1c.png").is_file() and not (good / "report" / "flair.png").exists()
    assert "flair.png" not in (good / "report" / "report.html").read_text()
