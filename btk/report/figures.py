"""PNG figures: a segmentation over an image in three planes through the tumour centre."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from btk.io import atomic_path
from btk.labels import LabelConvention
from btk.report.colours import label_colours


def tumour_centre(segmentation: np.ndarray) -> tuple[int, int, int]:
    """The voxel at the centre of mass of the tumour (the middle of the volume if there is none)."""
    voxels = np.argwhere(segmentation > 0)
    if len(voxels) == 0:
        x, y, z = (int(s) // 2 for s in segmentation.shape[:3])
        return x, y, z
    x, y, z = (round(float(c)) for c in voxels.mean(axis=0)[:3])
    return x, y, z


def canonical(image: nib.Nifti1Image) -> np.ndarray:
    """Voxel data reoriented to RAS, so that figures show patients the usual way round."""
    return np.asanyarray(nib.as_closest_canonical(image).dataobj)


def save_png(plt, figure, output: Path, dpi: int = 90, facecolor: str = "auto") -> Path:
    """Write a matplotlib figure as a PNG atomically (no half-written file), then close it."""
    try:
        with atomic_path(output) as temporary:
            figure.savefig(temporary, format="png", dpi=dpi, facecolor=facecolor)
    finally:
        plt.close(figure)
    return output


def display_window(anatomy: np.ndarray) -> tuple[float, float]:
    """The grey-level window of an image: its 0.5th and 99.5th percentiles inside the head."""
    if not (anatomy > 0).any():
        return 0.0, 1.0
    low, high = np.percentile(anatomy[anatomy > 0], (0.5, 99.5))
    return float(low), float(high)


def overlay_colours(convention: LabelConvention) -> np.ndarray:
    """Label value -> RGBA (translucent), for :func:`draw_overlay`."""
    colours = np.zeros((256, 4))
    for value, ((red, green, blue), _) in label_colours(convention).items():
        colours[value] = (red / 255, green / 255, blue / 255, 0.45)
    return colours


def draw_overlay(
    axis,
    picture: np.ndarray,
    mask: np.ndarray,
    colours: np.ndarray,
    window: tuple[float, float],
    title: str,
    fontsize: int,
) -> None:
    """One slice of an image on a matplotlib axis with its labels on top, patient the usual way round."""
    axis.imshow(picture.T, cmap="gray", origin="lower", vmin=window[0], vmax=window[1], interpolation="bilinear")
    axis.imshow(colours[mask.T], origin="lower", interpolation="nearest")
    axis.set_title(title, color="white", fontsize=fontsize)
    axis.axis("off")


def overlay_figure(
    image: nib.Nifti1Image, segmentation: nib.Nifti1Image, convention: LabelConvention, title: str, output: Path
) -> Path:
    """Write a PNG: axial, coronal and sagittal slices of ``image`` through the tumour centre, labels on top."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    anatomy = canonical(image).astype(np.float32)
    labels = canonical(segmentation).astype(np.uint8)
    x, y, z = tumour_centre(labels)
    low, high = display_window(anatomy)
    colours = overlay_colours(convention)
    planes = (
        ("axial", anatomy[:, :, z], labels[:, :, z]),
        ("coronal", anatomy[:, y, :], labels[:, y, :]),
        ("sagittal", anatomy[x, :, :], labels[x, :, :]),
    )
    figure, axes = plt.subplots(1, 3, figsize=(12, 4.4), facecolor="black", layout="tight")
    figure.suptitle(title, color="white", fontsize=12)
    for axis, (plane, picture, mask) in zip(axes, planes, strict=True):
        draw_overlay(axis, picture, mask, colours, (low, high), plane, fontsize=11)
    return save_png(plt, figure, output, dpi=90, facecolor="black")
