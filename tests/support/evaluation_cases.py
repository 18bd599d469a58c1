"""Prediction/reference pairs for checking btk's evaluation against the official evaluators.

Built from the real candidate segmentations in ``tests/data/fusion`` (labels renumbered to BraTS 2023's
1 NCR, 2 ED, 3 ET), with only numpy and nibabel, so that the oracle scripts in
``tests/data/evaluation_oracle`` (run in the official tools' own virtual environments) and btk's tests build
the very same arrays. The pairs cover several lesions, small fragments, an empty region, an empty prediction,
an empty reference and two empty maps.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

FUSION = Path(__file__).resolve().parents[1] / "data" / "fusion"
#: brats2021 value -> brats2023 value.
_TO_2023 = np.array([0, 1, 2, 0, 3], np.uint8)


def _candidate(case: str, name: str) -> np.ndarray:
    return _TO_2023[np.asarray(nib.load(str(FUSION / case / "candidates" / f"{name}.nii.gz")).dataobj, np.uint8)]


def _with_a_second_tumour(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``first`` plus ``second`` mirrored left-right wherever ``first`` is background: two or more lesions."""
    mirrored = second[::-1]
    return np.where(first > 0, first, mirrored).astype(np.uint8)


def _without_enhancing(array: np.ndarray) -> np.ndarray:
    return np.where(array == 3, 1, array).astype(np.uint8)


def pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pair name -> (prediction, reference), each a BraTS-space label map in BraTS 2023 labels."""
    a, b = "TCGA-FG-6692", "TCGA-DU-7294"
    isen_a, scan_a, sanet_a = (_candidate(a, n) for n in ("isen-20", "scan-20", "sanet0-20"))
    isen_b, hnf_b, yixin_b = (_candidate(b, n) for n in ("isen-20", "hnfnetv1-20", "yixinmpl-20"))
    empty = np.zeros_like(isen_a)
    return {
        "fg6692-scan-vs-isen": (scan_a, isen_a),
        "fg6692-sanet-vs-scan": (sanet_a, scan_a),
        "du7294-hnf-vs-isen": (hnf_b, isen_b),
        "du7294-yixin-vs-hnf": (yixin_b, hnf_b),
        "two-tumours": (_with_a_second_tumour(scan_a, hnf_b), _with_a_second_tumour(isen_a, isen_b)),
        "second-tumour-missed": (scan_a, _with_a_second_tumour(isen_a, yixin_b)),
        "second-tumour-false-positive": (_with_a_second_tumour(sanet_a, isen_b), isen_a),
        "reference-without-et": (scan_a, _without_enhancing(isen_a)),
        "prediction-without-et": (_without_enhancing(scan_a), isen_a),
        "empty-prediction": (empty, isen_b),
        "empty-reference": (hnf_b, empty),
        "both-empty": (empty, empty),
    }


def more_pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pairs beyond :func:`pairs` (which the BraTS 2023 expected values cover): a prediction with tumours that
    miss the reference's entirely (the first case's prediction mirrored left-right), so that every region has
    instances in both maps, no voxel in common and no true positive."""
    a = "TCGA-FG-6692"
    return {"disjoint-tumours": (_candidate(a, "scan-20")[::-1].copy(), _candidate(a, "isen-20"))}
