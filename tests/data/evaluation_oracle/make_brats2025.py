#!/usr/bin/env python3
"""Expected values of the BraTS 2025 evaluation, from the official evaluator itself.

Runs the official tool end to end on the pairs of ``tests/support/evaluation_cases.py`` (``pairs`` and
``more_pairs``): ``brats_evaluation``'s command line (``evaluation.main``:
``Panoptica_Evaluator.load_from_config`` on a bundled configuration, then ``evaluate`` on each case's files)
on folders of NIfTI files written to a temporary folder (the real candidates' grid and affine), then
``metrics_parser.parse_seg_results`` on its JSON summary (``parse_mets_results``, the metastases variant,
for the mets configuration, with the official thresholds and with others), and reads the per-case values
back from the parser's CSV. The pairs are in BraTS 2023 labels (1 NCR, 2 ED, 3 ET); each evaluation renumbers them by a
lookup table into its configuration's labels. Writes ``brats2025.json`` here.

Run it from the repository root with the interpreter of the official tool's own virtual environment
(panoptica needs numpy < 2.3, which btk's environment cannot have)::

    python3 -m venv venv-brats2025
    venv-brats2025/bin/pip install brats-evaluation==0.0.10 panoptica==2.1.7
    venv-brats2025/bin/python tests/data/evaluation_oracle/make_brats2025.py

This script is ours; it only calls the official tool's public entry points.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
#: Evaluation -> (btk's challenge name, the official configuration, BraTS 2023 label -> configuration label,
#: voxel spacing in mm).
EVALUATIONS: dict[str, tuple[str, str, tuple[int, ...], tuple[float, float, float]]] = {
    "gli": ("gli", "gli", (0, 1, 2, 3), (1.0, 1.0, 1.0)),
    # the whole tumour as the gross tumour volume
    "men-rt": ("men-rt", "MenRT", (0, 1, 1, 1), (1.0, 1.0, 1.0)),
    # NCR as non-enhancing tumour (2), ED as oedema (4), ET as ET (1); no cystic component
    "ped": ("ped", "ped", (0, 2, 4, 1), (1.0, 1.0, 1.0)),
    # NCR as a resection cavity (4): a real-shaped cavity region next to ET, TC = ET, WT = ED + ET
    "met": ("met", "mets", (0, 4, 2, 3), (1.0, 1.0, 1.0)),
    "goat": ("goat", "GoAT", (0, 1, 2, 3), (1.0, 1.0, 1.0)),
    # an anisotropic grid: the official tool's spacing per axis (see btk.evaluation.brats2025)
    "gli-anisotropic": ("gli", "gli", (0, 1, 2, 3), (0.8, 1.0, 1.5)),
}
#: The metastases variants parsed from the mets configuration's summary: name -> (volume threshold in mm³,
#: overlap threshold); the first is the official default, the second makes the 27 mm³ lesion small and the
#: partial matches undetected.
METS_VARIANTS: dict[str, tuple[float, float]] = {"met": (20.0, 0.1), "met-thresholds": (30.0, 0.5)}
#: The official parser's CSV column (before ``_<region>``) -> btk's column.
FIELDS = {
    "global_dsc": "global_dsc",
    "global_nsd": "global_nsd",
    "global_hd95": "global_hd95_mm",
    "lesionwise_dsc_mean": "lesionwise_dsc_mean",
    "lesionwise_hd95_mean": "lesionwise_hd95_mean_mm",
    "lesionwise_nsd_mean": "lesionwise_nsd_mean",
    "all_instance_tp": "instance_tp",
    "all_instance_fp": "instance_fp",
    "all_instance_fn": "instance_fn",
    "all_instance_f1": "instance_f1",
}
#: The metastases variant's columns beyond :data:`FIELDS`.
METS_FIELDS = {
    f"{size}_instance_{metric}": f"{size}_instance_{metric}"
    for size in ("large", "small")
    for metric in ("tp", "fp", "fn", "f1")
}
COUNTS = {"instance_tp", "instance_fp", "instance_fn"} | {
    f"{s}_instance_{m}" for s in ("large", "small") for m in ["tp", "fp", "fn"]
}


def main() -> None:
    sys.path.insert(0, str(ROOT))
    import pandas as pd
    import SimpleITK as sitk
    from brats_evaluation import evaluation, metrics_parser

    from tests.support.evaluation_cases import FUSION, more_pairs, pairs

    affine = nib.load(str(FUSION / "TCGA-FG-6692" / "candidates" / "isen-20.nii.gz")).affine
    cases = {**pairs(), **more_pairs()}
    results: dict[str, dict] = {}
    about: dict[str, dict] = {}
    for key, (challenge, config, table, spacing) in EVALUATIONS.items():
        lookup = np.array(table, np.uint8)
        with tempfile.TemporaryDirectory() as folder:
            base = Path(folder)
            names = _write_cases(base, cases, lookup, _scaled(affine, spacing))
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                sys.argv = [
                    "brats-evaluation",
                    *("--ref_path", str(base / "ref"), "--pred_path", str(base / "pred")),
                    *("--config", config, "--summary_json", str(base / "summary.json")),
                ]
                evaluation.main()
                seconds = (time.perf_counter() - started) / len(names)
                summary_json = str(base / "summary.json")
                parses = {key: (None, FIELDS)}
                if config == "mets":
                    parses = {
                        variant: (thresholds, FIELDS | METS_FIELDS) for variant, thresholds in METS_VARIANTS.items()
                    }
                tables = {}
                for variant, (thresholds, _) in parses.items():
                    parsed = str(base / f"{variant}.csv")
                    if thresholds is None:
                        metrics_parser.parse_seg_results(summary_json, parsed)
                    else:
                        metrics_parser.parse_mets_results(summary_json, *thresholds, parsed)
                    tables[variant] = pd.read_csv(parsed, float_precision="round_trip").to_dict("records")
            summary = json.loads((base / "summary.json").read_text())
            regions = [k for k in summary["metrics"][0] if k != "subject_name"]
            read_spacing = sitk.ReadImage(str(next((base / "ref").iterdir()))).GetSpacing()
        for variant, (thresholds, fields) in parses.items():
            by_subject = {str(row["subject_id"]): row for row in tables[variant]}
            for subject, pair in names.items():
                row = by_subject[subject]
                results[f"{pair}/{variant}"] = {
                    region: {ours: _plain(row[f"{theirs}_{region}"], ours in COUNTS) for theirs, ours in fields.items()}
                    for region in regions
                }
            about[variant] = {
                "challenge": challenge,
                "config": config,
                "labels_from_brats2023": list(table),
                "spacing": list(spacing),
                "spacing_read_by_the_official_tool": list(read_spacing),
                "regions": regions,
                "seconds_per_case": round(seconds, 3),
                **({"mets_thresholds": list(thresholds)} if thresholds is not None else {}),
            }
        print(f"{key}: {len(names)} cases, {seconds:.3f} s each", file=sys.stderr)
    payload = {
        "about": "per-case values of the official BraTS 2025 evaluation (brats_evaluation.evaluation.main, then "
        "metrics_parser.parse_seg_results, or parse_mets_results with mets_thresholds), per pair/evaluation and "
        "region; null is NaN",
        "versions": {p: md.version(p) for p in ("brats-evaluation", "panoptica", "numpy", "scipy", "simpleitk")},
        "evaluations": about,
        "results": results,
    }
    (HERE / "brats2025.json").write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {HERE / 'brats2025.json'}: {len(results)} evaluations", file=sys.stderr)


def _scaled(affine: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """The affine with its voxel axes scaled to ``spacing`` (the candidates' grid is 1 mm)."""
    scaled = affine.copy()
    scaled[:3, :3] = affine[:3, :3] @ np.diag(spacing)
    return scaled


def _write_cases(base: Path, cases: dict, lookup: np.ndarray, affine: np.ndarray) -> dict[str, str]:
    """Write each pair as ``ref/BraTS-X-NNNNN-000.nii.gz`` and ``pred/pred-NNNNN-000.nii.gz`` (the official
    tool's case ids); returns reference file name -> pair name."""
    (base / "ref").mkdir()
    (base / "pred").mkdir()
    names = {}
    for index, (name, (prediction, reference)) in enumerate(cases.items(), start=1):
        subject = f"{index:05d}-000"
        for folder, file, array in (("ref", f"BraTS-X-{subject}", reference), ("pred", f"pred-{subject}", prediction)):
            nib.save(nib.Nifti1Image(lookup[array], affine), str(base / folder / f"{file}.nii.gz"))
        names[f"BraTS-X-{subject}.nii.gz"] = name
    return names


def _plain(value: object, count: bool) -> object:
    """A JSON value: None for NaN, the string "inf" for infinity, an int for a count."""
    number = float(value)  # type: ignore[arg-type]
    if math.isnan(number):
        return None
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return int(number) if count else number


if __name__ == "__main__":
    main()
