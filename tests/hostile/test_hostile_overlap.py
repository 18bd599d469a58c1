"""Hostile cases: commands asked to write into (or around) their own inputs refuse before any work."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.hostile import assert_user_error, files_under, run_btk

BRATS_EXAM = Path(__file__).resolve().parents[1] / "data" / "pipeline" / "BraTS-GLI-00001-000"


@pytest.fixture
def exam(tmp_path: Path) -> Path:
    """A private copy of a BraTS-space exam (so a failing guard could never touch the repository's data)."""
    return Path(shutil.copytree(BRATS_EXAM, tmp_path / "exam"))


@pytest.mark.parametrize("where", ["the exam folder", "a folder around the exam"])
@pytest.mark.slow
def test_segment_never_writes_into_or_around_its_exam(exam: Path, where: str):
    output = exam if where == "the exam folder" else exam.parent
    before = files_under(exam.parent)
    result = run_btk("segment", exam, "-a", "btk-unet", "-o", output, "--no-pull")
    assert_user_error(result, output)
    assert files_under(exam.parent) == before


def test_run_never_writes_inside_its_input(exam: Path):
    output = exam / "results"
    result = run_btk("run", exam, "--candidates", exam, "-o", output)
    assert_user_error(result, output)
    assert not output.exists()


@pytest.mark.slow
def test_unet_predict_never_replaces_its_own_input(exam: Path):
    image = exam / "BraTS-GLI-00001-000-t1c.nii.gz"
    content = image.read_bytes()
    result = run_btk("unet-predict", exam, "-w", exam, "-o", image, "--force")
    assert_user_error(result, image)
    assert image.read_bytes() == content


@pytest.mark.slow
def test_train_never_writes_its_run_folder_into_the_data(exam: Path):
    output = exam / "run"
    result = run_btk("train", exam.parent, "-o", output)
    assert_user_error(result, output)
    assert not output.exists()
