"""Synthetic exams and registry files for the Segmentor's tests."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

SHAPE = (40, 44, 32)
#: Not the identity: the tests check that results are re-stamped with the input's geometry.
AFFINE = np.array([[-1.0, 0, 0, 90], [0, -1.0, 0, 126], [0, 0, 1.0, -72], [0, 0, 0, 1]])


def _ball(shape: tuple[int, ...], centre: tuple[float, float, float], radius: float) -> np.ndarray:
    grid = np.indices(shape).astype(float)
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2


def make_exam(
    folder: Path, names: dict[str, str] | None = None, shape_of: dict[str, tuple] | None = None, scale: int = 1
) -> Path:
    """Four modalities of a head with one tumour: bright FLAIR oedema, an enhancing rim, a dark necrotic core.

    ``scale`` multiplies the grid (``SHAPE``) in every direction, for tests that need bigger files.
    """
    names = names or {
        "t1": "exam_t1.nii.gz",
        "t1c": "exam_t1c.nii.gz",
        "t2": "exam_t2.nii.gz",
        "flair": "exam_flair.nii.gz",
    }
    shape = tuple(scale * n for n in SHAPE)
    rng = np.random.default_rng(4)
    head = _ball(shape, (20 * scale, 22 * scale, 16 * scale), 17 * scale)
    oedema, rim, core = (_ball(shape, (24 * scale, 24 * scale, 16 * scale), r * scale) for r in (8, 5, 3))
    base = np.where(head, 100.0, 0.0) + np.where(head, rng.normal(0, 3, shape), 0)
    images = {
        "t1": base,
        "t2": base + 40 * oedema,
        "flair": base + 120 * oedema,
        "t1c": base + 150 * (rim & ~core) - 60 * core,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for modality, data in images.items():
        if shape_of and modality in shape_of:
            data = np.zeros(shape_of[modality])
        nib.save(nib.Nifti1Image(data.astype(np.float32), AFFINE), str(folder / names[modality]))
    return folder


def entry(name: str, image: str, contract: dict, **fields) -> dict:
    """A registry entry with test defaults."""
    return {
        "name": name,
        "image": image.rsplit(":", 1)[0],
        "tag": image.rsplit(":", 1)[1],
        "authors": "btk tests",
        "citation": "none",
        "year": 2025,
        "contract": contract,
        "gpu": "none",
        "labels": "brats2023",
        "timeout_s": 60,
        **fields,
    }


def write_registry(path: Path, *entries: dict) -> Path:
    path.write_text(json.dumps({"schema_version": 1, "algorithms": list(entries)}), encoding="utf-8")
    return path
