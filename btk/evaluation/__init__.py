"""Evaluation of segmentations against references, per case and region, as in the BraTS challenges.

>>> from btk.evaluation import EvaluationSettings, evaluate_case
>>> rows = evaluate_case("pred.nii.gz", "ref.nii.gz")                        # btk's metrics (legacy)
>>> rows = evaluate_case("pred.nii.gz", "ref.nii.gz", settings=EvaluationSettings("brats2023", "met"))
>>> rows = evaluate_case("pred.nii.gz", "ref.nii.gz", settings=EvaluationSettings("brats2025", "gli"))

Schemes: ``legacy`` (Dice, HD95, sensitivity, specificity and volumes per region of the label convention;
:mod:`btk.evaluation.metrics`), ``brats2023`` (the lesion-wise metrics of the official BraTS 2023 code,
number for number; :mod:`btk.evaluation.brats2023`) and ``brats2025`` (the official BraTS 2025 evaluator,
``brats-evaluation`` on panoptica, number for number; :mod:`btk.evaluation.brats2025`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from btk.evaluation.brats2023 import Brats2023Row
    from btk.evaluation.brats2025 import Brats2025MetsRow, Brats2025Row, MetsThresholds
    from btk.evaluation.cases import (
        CSV_COLUMNS,
        SCHEMES,
        EvaluationRow,
        EvaluationSettings,
        case_id,
        evaluate_arrays,
        evaluate_case,
        evaluate_folders,
        pair_cases,
        write_csv,
    )
    from btk.evaluation.metrics import (
        HD95_EMPTY_PENALTY_MM,
        RegionMetrics,
        dice,
        empty_hd95_penalty_mm,
        hd95,
        region_metrics,
    )

#: Where each name lives; importing the package loads none of them (the fusion's agreement report needs the
#: metrics alone, and the BraTS 2023 and 2025 schemes only load when asked for).
_LAZY = {
    "CSV_COLUMNS": "btk.evaluation.cases",
    "SCHEMES": "btk.evaluation.cases",
    "EvaluationRow": "btk.evaluation.cases",
    "EvaluationSettings": "btk.evaluation.cases",
    "case_id": "btk.evaluation.cases",
    "evaluate_arrays": "btk.evaluation.cases",
    "evaluate_case": "btk.evaluation.cases",
    "evaluate_folders": "btk.evaluation.cases",
    "pair_cases": "btk.evaluation.cases",
    "write_csv": "btk.evaluation.cases",
    "HD95_EMPTY_PENALTY_MM": "btk.evaluation.metrics",
    "RegionMetrics": "btk.evaluation.metrics",
    "dice": "btk.evaluation.metrics",
    "empty_hd95_penalty_mm": "btk.evaluation.metrics",
    "hd95": "btk.evaluation.metrics",
    "region_metrics": "btk.evaluation.metrics",
    "Brats2023Row": "btk.evaluation.brats2023",
    "Brats2025MetsRow": "btk.evaluation.brats2025",
    "Brats2025Row": "btk.evaluation.brats2025",
    "MetsThresholds": "btk.evaluation.brats2025",
}

__all__ = [
    "CSV_COLUMNS",
    "HD95_EMPTY_PENALTY_MM",
    "SCHEMES",
    "Brats2023Row",
    "Brats2025MetsRow",
    "Brats2025Row",
    "EvaluationRow",
    "EvaluationSettings",
    "MetsThresholds",
    "RegionMetrics",
    "case_id",
    "dice",
    "empty_hd95_penalty_mm",
    "evaluate_arrays",
    "evaluate_case",
    "evaluate_folders",
    "hd95",
    "pair_cases",
    "region_metrics",
    "write_csv",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'btk.evaluation' has no attribute {name!r}")
