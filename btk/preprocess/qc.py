"""Quality-control overviews: a grid of axial slices per modality with the brain-mask outline."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from btk.io import atomic_path

SLICES = 12
COLUMNS = 4


def write_overview(image: np.ndarray, mask: np.ndarray, affine: np.ndarray, title: str, path: Path) -> None:
    """Write a PNG with ``SLICES`` axial slices of ``image`` (atlas space, voxel-to-world ``affine``) and the
    outline of ``mask``, anterior up and the patient's left on the right (the radiological view)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    brain_slices = np.flatnonzero(mask.any(axis=(0, 1)))
    low, high = (brain_slices[0], brain_slices[-1]) if len(brain_slices) else (0, image.shape[2] - 1)
    chosen = np.linspace(low, high, SLICES + 2)[1:-1].round().astype(int)
    vmax = float(np.percentile(image[mask > 0], 99.5)) if mask.any() else float(image.max())
    rows = int(np.ceil(SLICES / COLUMNS))
    figure, axes = plt.subplots(rows, COLUMNS, figsize=(COLUMNS * 2.4, rows * 2.4), facecolor="black")
    for axis, index in zip(axes.ravel(), chosen):
        axis.imshow(_radiological(image[:, :, index], affine), cmap="gray", vmin=0, vmax=max(vmax, 1e-6))
        if mask[:, :, index].any():
            axis.contour(_radiological(mask[:, :, index], affine), levels=[0.5], colors="red", linewidths=0.6)
        axis.set_title(f"z={index}", color="white", fontsize=7)
        axis.axis("off")
    figure.suptitle(title, color="white", fontsize=9)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=80, facecolor="black")
    plt.close(figure)


def _radiological(axial: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """An axial slice (first axis x, second y) as rows and columns to show: anterior at the top, the patient's
    right on the left; from the signs of the affine's x and y axes (BraTS SRI24 is LPS, MNI152 LAS)."""
    rows_by_columns = axial.T
    if affine[1, 1] > 0:  # y index grows towards anterior: put the last row on top
        rows_by_columns = rows_by_columns[::-1, :]
    if affine[0, 0] > 0:  # x index grows towards the patient's right: put it on the left
        rows_by_columns = rows_by_columns[:, ::-1]
    return rows_by_columns
