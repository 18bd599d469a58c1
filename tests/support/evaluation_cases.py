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


#: Small enhancing lesions added to a real pair for the metastases variant: (x, y, z) corner and size of
#: each reference lesion, and the shift of the predicted one (None: missed). The sizes straddle the official
#: 20 mm³ threshold; the shifts give a perfect match, a partial one and one under the 0.1 overlap threshold.
_SMALL_LESIONS: tuple[tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int] | None], ...] = (
    ((60, 60, 40), (2, 2, 2), (0, 0, 0)),  # 8 voxels, found exactly
    ((60, 80, 40), (3, 2, 2), (1, 0, 0)),  # 12 voxels, found in part (Dice 2/3)
    ((60, 100, 40), (3, 3, 2), (2, 2, 1)),  # 18 voxels, barely touched (Dice 1/18)
    ((60, 120, 40), (2, 2, 3), None),  # 12 voxels, missed
    ((60, 140, 40), (3, 3, 3), (1, 1, 0)),  # 27 voxels (large), found in part
)
#: A small false-positive lesion of the prediction: corner and size.
_SMALL_FALSE_POSITIVE = ((60, 160, 40), (2, 2, 2))


def _with_small_lesions(prediction: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pair with :data:`_SMALL_LESIONS` (enhancing, in background of both) and the false positive added."""
    prediction, reference = prediction.copy(), reference.copy()

    def box(corner: tuple[int, ...], size: tuple[int, ...]) -> tuple[slice, ...]:
        return tuple(slice(c, c + n) for c, n in zip(corner, size))

    for corner, size, shift in _SMALL_LESIONS:
        reference[box(corner, size)] = 3
        if shift is not None:
            prediction[box(tuple(c + d for c, d in zip(corner, shift)), size)] = 3
    prediction[box(*_SMALL_FALSE_POSITIVE)] = 3
    return prediction, reference


def more_pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pairs beyond :func:`pairs` (which the BraTS 2023 expected values cover): a prediction with tumours that
    miss the reference's entirely (the first case's prediction mirrored left-right), so that every region has
    instances in both maps, no voxel in common and no true positive; and a real pair with small lesions added
    (:data:`_SMALL_LESIONS`), for the metastases variant's large and small lesions."""
    a = "TCGA-FG-6692"
    scan_a, isen_a = _candidate(a, "scan-20"), _candidate(a, "isen-20")
    return {
        "disjoint-tumours": (scan_a[::-1].copy(), isen_a),
        "small-lesions": _with_small_lesions(scan_a, isen_a),
    }
