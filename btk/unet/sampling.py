"""Patch sampling biased towards tumour."""

from __future__ import annotations

import numpy as np

from btk.unet.dataset import PreparedCase


def patch_start(
    shape: tuple[int, ...], centre: np.ndarray, size: tuple[int, ...], rng: np.random.Generator, jitter: float = 0.25
) -> np.ndarray:
    """The patch's first voxel: around ``centre`` (moved by up to ``jitter`` of the patch), inside the volume.

    Where the volume is smaller than the patch the start is negative and :func:`extract` pads.
    """
    size_ = np.asarray(size)
    offset = rng.integers(-(size_ * jitter).astype(int), (size_ * jitter).astype(int) + 1)
    start = np.asarray(centre) + offset - size_ // 2
    room = np.asarray(shape) - size_
    return np.where(room >= 0, np.clip(start, 0, np.maximum(room, 0)), room // 2)


def extract(volume: np.ndarray, start: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """A (C, *size) patch of a (C, X, Y, Z) volume, zero-padded where it reaches outside."""
    patch = np.zeros((volume.shape[0], *size), dtype=np.float32)
    source, target = [slice(None)], [slice(None)]
    for begin, length, extent in zip(start, size, volume.shape[1:]):
        first, last = max(int(begin), 0), min(int(begin) + length, extent)
        source.append(slice(first, last))
        target.append(slice(first - int(begin), last - int(begin)))
    patch[tuple(target)] = volume[tuple(source)]
    return patch


def sample_patch(
    case: PreparedCase, size: tuple[int, ...], tumour_probability: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One (images, regions) patch: centred on a tumour voxel with ``tumour_probability``, else anywhere."""
    shape = case.images.shape[1:]
    if len(case.tumour) and rng.random() < tumour_probability:
        centre = np.asarray(np.unravel_index(int(case.tumour[rng.integers(len(case.tumour))]), shape))
    else:
        centre = rng.integers(0, shape)
    start = patch_start(shape, centre, size, rng)
    return extract(case.images, start, size), extract(case.regions, start, size)


def sample_batch(
    cases: list[PreparedCase],
    batch_size: int,
    size: tuple[int, ...],
    tumour_probability: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """A batch of patches from randomly chosen cases: (B, 4, *size) images, (B, 3, *size) regions."""
    pairs = [sample_patch(cases[rng.integers(len(cases))], size, tumour_probability, rng) for _ in range(batch_size)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
