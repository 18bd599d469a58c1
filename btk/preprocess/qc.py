"""Quality-control overviews: a grid of axial slices per modality with the brain-mask outline."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from btk.io import atomic_path

SLICES = 12
COLUMNS = 4


def write_overview(image: np.ndarray, mask: np.ndarray, title: str, path: Path) -> None:
    """Write a PNG with ``SLICES`` axial slices of ``image`` (BraTS space) and the outline of ``mask``."""
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
        # the BraTS grid is LPS: transpose and flip so that anterior is up and the patient's left is right
        axis.imshow(image[:, :, index].T, cmap="gray", vmin=0, vmax=max(vmax, 1e-6), origin="upper")
        if mask[:, :, index].any():
            axis.contour(mask[:, :, index].T, levels=[0.5], colors="red", linewidths=0.6)
        axis.set_title(f"z={index}", color="white", fontsize=7)
        axis.axis("off")
    figure.suptitle(title, color="white", fontsize=9)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=80, facecolor="black")
    plt.close(figure)
