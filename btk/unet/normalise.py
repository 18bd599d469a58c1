"""Intensity normalisation: per modality, clip to percentiles and z-score inside the brain."""

from __future__ import annotations

import numpy as np

#: Percentiles (inside the brain) the intensities are clipped to before z-scoring.
CLIP_PERCENTILES: tuple[float, float] = (0.5, 99.5)


def brain_mask(images: np.ndarray) -> np.ndarray:
    """Voxels where any modality is non-zero (BraTS images are skull-stripped, background exactly 0)."""
    return np.any(images != 0, axis=0)


def normalise(images: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Clip each channel to its :data:`CLIP_PERCENTILES` inside ``mask``, z-score it there, zero outside.

    Args:
        images: (C, X, Y, Z) intensities.
        mask: brain mask; default :func:`brain_mask`.

    Returns:
        ``float32`` array of the same shape.
    """
    mask = brain_mask(images) if mask is None else mask
    result = np.zeros(images.shape, dtype=np.float32)
    if not mask.any():
        return result
    for channel, image in enumerate(images):
        values = image[mask].astype(np.float64)
        low, high = np.percentile(values, CLIP_PERCENTILES)
        values = np.clip(values, low, high)
        std = values.std()
        result[channel][mask] = ((values - values.mean()) / (std if std > 0 else 1.0)).astype(np.float32)
    return result
