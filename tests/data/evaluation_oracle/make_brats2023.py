#!/usr/bin/env python3
"""Expected values of the BraTS 2023 lesion-wise metrics, from the official 2023 metrics code itself.

Runs ``get_LesionWiseResults`` of the official BraTS 2023 metrics (rachitsaluja/BraTS-2023-Metrics, kept
outside this repository, e.g. in ``../shared/oracles/brats2023-metrics/``) on the pairs of
``tests/support/evaluation_cases.py`` for three challenges' settings and writes ``brats2023.json`` here.
Run it from the repository root with the interpreter of the oracle's own virtual environment::

    python3 -m venv venv-brats2023
    venv-brats2023/bin/pip install "numpy<2" "pandas<2" connected-components-3d surface-distance nibabel scipy
    venv-brats2023/bin/python tests/data/evaluation_oracle/make_brats2023.py \
        --metrics ../shared/oracles/brats2023-metrics

This script is ours; it only calls the official code's public entry point, on files it writes to a temporary
folder (the real candidates' grid and affine).
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
CHALLENGES = {"gli": "BraTS-GLI", "met": "BraTS-MET", "men": "BraTS-MEN"}
#: Voxel spacings at which the areas of the 256 surface elements (the official code's surface-distance
#: package) are recorded.
SPACINGS = ((1.0, 1.0, 1.0), (1.0, 2.0, 3.0), (0.9375, 0.9375, 1.5))
FIELDS = {
    "Num_TP": "num_tp",
    "Num_FP": "num_fp",
    "Num_FN": "num_fn",
    "Sensitivity": "sensitivity",
    "Specificity": "specificity",
    "Legacy_Dice": "legacy_dice",
    "Legacy_HD95": "legacy_hd95_mm",
    "LesionWise_Score_Dice": "lesionwise_dice",
    "LesionWise_Score_HD95": "lesionwise_hd95_mm",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=Path, default=ROOT.parent / "shared" / "oracles" / "brats2023-metrics")
    args = parser.parse_args()
    sys.path.insert(0, str(args.metrics.resolve()))
    sys.path.insert(0, str(ROOT))
    import metrics  # noqa: I001 (the official code, from --metrics)
    from tests.support.evaluation_cases import FUSION, pairs

    affine = nib.load(str(FUSION / "TCGA-FG-6692" / "candidates" / "isen-20.nii.gz")).affine
    results, seconds = {}, []
    with tempfile.TemporaryDirectory() as folder:
        for name, (prediction, reference) in pairs().items():
            paths = []
            for role, array in (("pred", prediction), ("ref", reference)):
                path = Path(folder) / f"{name}-{role}.nii.gz"
                nib.save(nib.Nifti1Image(array.astype(np.uint8), affine), str(path))
                paths.append(str(path))
            for challenge, official in CHALLENGES.items():
                started = time.perf_counter()
                table = metrics.get_LesionWiseResults(paths[0], paths[1], official)
                seconds.append(time.perf_counter() - started)
                results[f"{name}/{challenge}"] = {
                    row["Labels"]: {ours: _plain(row[theirs]) for theirs, ours in FIELDS.items()}
                    for row in table.to_dict("records")
                }
    from surface_distance import lookup_tables

    areas = {
        "x".join(map(str, spacing)): lookup_tables.create_table_neighbour_code_to_surface_area(spacing).tolist()
        for spacing in SPACINGS
    }
    payload = {
        "about": "get_LesionWiseResults of the official BraTS 2023 metrics code, per pair/challenge and region",
        "source": "rachitsaluja/BraTS-2023-Metrics metrics.py (commit 43c9052, two compatibility changes)",
        "versions": {
            p: md.version(p) for p in ("numpy", "pandas", "scipy", "connected-components-3d", "surface-distance")
        },
        "seconds_per_case": round(float(np.mean(seconds)), 3),
        "results": results,
        "surface_element_areas": areas,
    }
    (HERE / "brats2023.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {HERE / 'brats2023.json'}: {len(results)} evaluations, {payload['seconds_per_case']} s each")


def _plain(value: object) -> object:
    number = float(value)
    return int(number) if number.is_integer() and abs(number) < 1e15 else number


if __name__ == "__main__":
    main()
