"""Inference: sliding window with overlap, test-time augmentation by flips, ensembles of checkpoints."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from btk.arrays import bounding_box
from btk.errors import InputError
from btk.labels import LabelConvention, get_convention
from btk.unet.cases import Case, load_images
from btk.unet.checkpoints import find_checkpoints, load_model
from btk.unet.devices import resolve_device
from btk.unet.model import DEPTH, UNet3D
from btk.unet.normalise import brain_mask, normalise

#: Default sliding-window patch (voxels per axis).
DEFAULT_PATCH = (128, 128, 128)


def default_threads() -> int:
    """The torch thread count inference uses unless told otherwise: the CPUs this process may use, at most 8.

    Pinned explicitly (in-process and in the container alike) so both compute in the same order.
    """
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, available))


def window_starts(extent: int, patch: int, overlap: float) -> list[int]:
    """First voxels of the windows along one axis: evenly spread, neighbours overlapping by ``overlap``."""
    if extent <= patch:
        return [0]
    step = max(1, int(patch * (1 - overlap)))
    count = int(np.ceil((extent - patch) / step)) + 1
    return [round(v) for v in np.linspace(0, extent - patch, count).tolist()]


def gaussian_importance(patch: Sequence[int], sigma_fraction: float = 0.125) -> torch.Tensor:
    """Weights favouring a window's centre, where the network sees the most context."""
    axes = [torch.exp(-0.5 * ((torch.arange(n) - (n - 1) / 2) / (n * sigma_fraction)) ** 2) for n in patch]
    weights = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    return (weights / weights.max()).clamp_min(1e-3)


def _padded_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """Each axis rounded up to a multiple of 2**DEPTH, the network's coarsest stride."""
    multiple = 2**DEPTH
    return tuple(int(np.ceil(s / multiple)) * multiple for s in shape)


def flip_sets(tta: bool) -> list[tuple[int, ...]]:
    """The spatial axes (of a B, C, X, Y, Z tensor) to mirror: none, or all 8 combinations with TTA."""
    if not tta:
        return [()]
    return [axes for r in range(4) for axes in itertools.combinations((2, 3, 4), r)]


@torch.inference_mode()
def predict_probabilities(
    models: Sequence[UNet3D],
    images: np.ndarray,
    patch: Sequence[int] = DEFAULT_PATCH,
    overlap: float = 0.5,
    tta: bool = True,
    device: str = "cpu",
) -> np.ndarray:
    """Region probabilities (3, X, Y, Z) of normalised images (4, X, Y, Z), averaged over models and flips."""
    shape = images.shape[1:]
    padded = _padded_shape(shape)
    window = tuple(min(p, s) for p, s in zip(patch, padded))
    volume = torch.zeros((1, images.shape[0], *padded), dtype=torch.float32)
    inside = tuple(slice(0, s) for s in shape)  # the images' voxels within the padded volume
    volume[(0, slice(None)) + inside] = torch.from_numpy(np.ascontiguousarray(images))
    volume = volume.to(device)
    importance = gaussian_importance(window).to(device)
    total = torch.zeros((3, *padded), dtype=torch.float32, device=device)
    weight = torch.zeros(padded, dtype=torch.float32, device=device)
    flips = flip_sets(tta)
    for start in itertools.product(*(window_starts(s, w, overlap) for s, w in zip(padded, window))):
        region = tuple(slice(b, b + w) for b, w in zip(start, window))
        patch_images = volume[(slice(None), slice(None)) + region]
        summed = torch.zeros((3, *window), dtype=torch.float32, device=device)
        for model in models:
            for axes in flips:
                flipped = patch_images.flip(axes) if axes else patch_images
                logits = model(flipped)
                probabilities = torch.sigmoid(logits.float())
                summed += (probabilities.flip(axes) if axes else probabilities)[0]
        total[(slice(None),) + region] += summed / (len(models) * len(flips)) * importance
        weight[region] += importance
    probabilities = total / weight
    return probabilities[(slice(None),) + inside].cpu().numpy()


def regions_to_labels(
    probabilities: np.ndarray, convention: str | LabelConvention, threshold: float = 0.5
) -> np.ndarray:
    """A nested label map from region probabilities: TC is kept inside WT and ET inside TC."""
    wt = probabilities[0] > threshold
    tc = wt & (probabilities[1] > threshold)
    et = tc & (probabilities[2] > threshold)
    return get_convention(convention).from_regions({"WT": wt, "TC": tc, "ET": et})


class Predictor:
    """Segments cases with one or several trained checkpoints (a self-ensemble).

    Args:
        weights: Checkpoint files, or folders whose ``*.pt`` files are all used.
        tta: Average over the 8 mirror flips.
        overlap: Fraction by which neighbouring sliding windows overlap.
        patch: Sliding-window size in voxels.
        threads: Torch CPU threads (default :func:`default_threads`).
        device: ``"cpu"``, ``"cuda"``, ... (default: CUDA if available).

    >>> predictor = Predictor(["run/best.pt"])
    >>> labels, image = predictor.segment_files(["c-t1n.nii.gz", "c-t1c.nii.gz", "c-t2w.nii.gz", "c-t2f.nii.gz"])
    """

    def __init__(
        self,
        weights: Sequence[str | Path],
        tta: bool = True,
        overlap: float = 0.5,
        patch: Sequence[int] = DEFAULT_PATCH,
        threads: int | None = None,
        device: str | None = None,
    ):
        if any(p <= 0 or p % 2**DEPTH for p in patch):
            raise InputError(f"the patch size {tuple(patch)} must be positive multiples of {2**DEPTH}")
        if not 0 <= overlap < 1:  # also refuses NaN
            raise InputError(f"the window overlap must lie in [0, 1), not {overlap}")
        if threads is not None and threads < 1:
            raise InputError(f"the number of threads must be at least 1, not {threads}")
        self.device = resolve_device(device)
        paths = [path for location in weights for path in find_checkpoints(Path(location))]
        self.threads = threads or default_threads()
        torch.set_num_threads(self.threads)
        self.models = [load_model(path).to(self.device) for path in paths]
        self.paths = paths
        self.tta, self.overlap, self.patch = tta, overlap, tuple(patch)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Region probabilities (3, X, Y, Z) of raw images (4, X, Y, Z), computed within the brain's box."""
        torch.set_num_threads(self.threads)
        mask = brain_mask(images)
        box = bounding_box(mask, margin=4)
        normalised = normalise(images, mask)[(slice(None),) + box]
        probabilities = np.zeros((3, *images.shape[1:]), dtype=np.float32)
        probabilities[(slice(None),) + box] = predict_probabilities(
            self.models, normalised, self.patch, self.overlap, self.tta, self.device
        )
        probabilities[:, ~mask] = 0
        return probabilities

    def segment(self, images: np.ndarray, convention: str | LabelConvention = "brats2023") -> np.ndarray:
        """The label map (``uint8``, in ``convention``) of raw images (4, X, Y, Z) in t1n, t1c, t2w, t2f order."""
        return regions_to_labels(self.probabilities(images), convention)

    def segment_files(
        self, images: Sequence[str | Path], convention: str | LabelConvention = "brats2023"
    ) -> tuple[np.ndarray, nib.Nifti1Image]:
        """Segment four co-registered NIfTI files (t1n, t1c, t2w, t2f); returns the labels and the t1n image."""
        case = Case(Path(images[0]).parent.name, tuple(Path(p) for p in images), None, "2023")
        data, reference = load_images(case)
        return self.segment(data, convention), reference
