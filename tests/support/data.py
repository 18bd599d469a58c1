"""Paths to the real test data and small synthetic label maps (the fixture ``fusion_case`` among them)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
FUSION_CASES = ("TCGA-FG-6692", "TCGA-DU-7294")


@pytest.fixture(params=FUSION_CASES)
def fusion_case(request: pytest.FixtureRequest) -> Path:
    """Folder of one real fusion case: ``candidates/`` and BraTS Toolkit's ``brats_toolkit_reference/``."""
    return DATA / "fusion" / request.param


def candidate_paths(case: Path) -> list[Path]:
    return sorted((case / "candidates").glob("*.nii.gz"))


def save(array: np.ndarray, path: Path, affine: np.ndarray | None = None, dtype=np.uint8) -> Path:
    nib.save(nib.Nifti1Image(np.asarray(array, dtype=dtype), np.eye(4) if affine is None else affine), str(path))
    return path


def sphere(shape: tuple[int, int, int], centre: tuple[float, float, float], radius: float) -> np.ndarray:
    grid = np.indices(shape).astype(float)
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2
