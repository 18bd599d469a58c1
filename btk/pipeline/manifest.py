"""The manifest: every study found, what it holds, and what became of it (``OUT/manifest.csv``).

The output folder's pseudonym salt (:func:`btk.deid.save_salt`) is stored with the first manifest, so the
studies keep their names when the run is resumed.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from btk.deid import save_salt
from btk.io import atomic_path
from btk.modalities import SHORT_NAMES
from btk.pipeline.options import StudyTask
from btk.pipeline.study import StudyResult

#: ``visit``: the study's place among the patient's visits (1: the baseline; ``btk run --longitudinal``), else empty.
COLUMNS = ("study", "kind", "visit", "source", "modalities", "dicom_files", "candidates", "status", "stage", "reason")


def write_manifest(path: Path, tasks: Sequence[StudyTask], results: dict[str, StudyResult] | None = None) -> None:
    """Write the manifest atomically; studies without a result yet are ``pending``."""
    results = results or {}
    save_salt(path.parent)
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for task in tasks:
            study, result = task.study, results.get(task.name)
            writer.writerow(
                {
                    "study": study.name,
                    "kind": study.kind,
                    "visit": study.visit or "",
                    "source": str(study.source),
                    "modalities": ";".join(SHORT_NAMES[modality] for modality in study.modalities),
                    "dicom_files": len(study.files),
                    "candidates": len(task.candidates),
                    "status": result.status if result else ("failed" if study.problem else "pending"),
                    "stage": result.stage if result else "",
                    "reason": result.reason if result else study.problem,
                }
            )
